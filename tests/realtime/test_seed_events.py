"""Every server event captured in the user's seed sessions parses into a typed event."""

import json
from pathlib import Path

import pytest

from device.realtime import events as ev
from device.realtime.dialect import Dialect
from device.realtime.protocol import RealtimeProtocol

ROWS = [json.loads(line) for line in (Path(__file__).parents[1] / "fixtures" / "seed_server_events.jsonl").open()]


def test_fixture_covers_every_seed():
    assert {r["seed"] for r in ROWS} == {"000", "001", "002", "003"}
    assert len(ROWS) > 700


@pytest.mark.parametrize("row", ROWS, ids=lambda r: f"{r['seed']}-{r['event']['type']}")
def test_seed_event_parses_to_a_known_type(row):
    protocol = RealtimeProtocol(Dialect(row["dialect"]))
    event = protocol.receive_text(json.dumps(row["event"]))
    assert not isinstance(event, ev.UnknownEvent), row["event"]["type"]
    assert event.event_id == row["event"]["event_id"]


def test_beta_names_map_to_ga_models():
    by_type = {}
    protocol = RealtimeProtocol(Dialect.BETA)
    for row in ROWS:
        by_type.setdefault(row["event"]["type"], type(protocol.receive_text(json.dumps(row["event"]))))
    assert by_type["response.audio.delta"] is ev.AudioDelta
    assert by_type["response.audio_transcript.done"] is ev.AudioTranscriptDone
    assert by_type["response.text.delta"] is ev.TextDelta
    assert by_type["conversation.item.created"] is ev.ConversationItemAdded


def test_seed_003_turn_detected_cancellation_is_readable():
    protocol = RealtimeProtocol(Dialect.BETA)
    cancelled = [e for e in (protocol.receive_text(json.dumps(r["event"])) for r in ROWS if r["seed"] == "003")
                 if isinstance(e, ev.ResponseDone) and e.response.status == "cancelled"]
    assert cancelled and all(e.response.reason in ("turn_detected", "client_cancelled") for e in cancelled)
    assert any(e.response.reason == "turn_detected" for e in cancelled)


def test_seed_003_errors_name_the_rejected_client_types():
    errors = [r["event"]["error"] for r in ROWS if r["event"]["type"] == "error"]
    assert {e["code"] for e in errors} >= {"invalid_value"}
    rejected = {e["message"].split("'")[1] for e in errors if e["message"].startswith("Invalid value")}
    # The device can never build these: they are not client event types.
    assert rejected and not rejected & set(ev.CLIENT_EVENTS)


def test_seed_002_text_only_reply_reads_as_zero_audio_tokens():
    protocol = RealtimeProtocol(Dialect.BETA)
    done = [protocol.receive_text(json.dumps(r["event"])) for r in ROWS
            if r["seed"] == "002" and r["event"]["type"] == "response.done"]
    assert done[0].response.audio_tokens == 0
    assert done[0].response.output[0].text.startswith("Hey! I'm doing well")


def test_seed_session_expiry_is_read_from_the_server():
    from device.realtime.dialect import parse_session
    created = [r["event"] for r in ROWS if r["event"]["type"] == "session.created"]
    infos = {r: parse_session(e["session"], Dialect.BETA) for r, e in zip("0123", created)}
    assert all(info.expires_at for info in infos.values())
    assert infos["2"].expires_at == 1729159204  # the 15-minute era
