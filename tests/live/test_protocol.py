"""The sans-I/O GPT-Live protocol core: every server event of the reference parses, unknown
events are kept, malformed frames are rejected with a typed error, and the device can only send
client events built from typed models within the reference's limits. No sockets."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from device.errors import (AuthenticationError, ConnectionLost, LocalProtocolError, RejectedSetupError,
                           RemoteProtocolError, ServerError, SessionExpired, should_retry)
from device.live import events as ev
from device.live import models as m
from device.live.connection import LiveEndpoint, error_for
from device.live.protocol import LiveProtocol, MalformedEvent

SAMPLES = [json.loads(line) for line in
           (Path(__file__).parents[1] / "fixtures" / "live_server_events.jsonl").read_text().splitlines() if line]


def test_every_server_event_of_the_reference_is_in_the_registry_and_sampled():
    sampled = {s["type"] for s in SAMPLES}
    assert sampled == set(ev.SERVER_EVENTS)
    assert len(ev.SERVER_EVENTS) == 16 and len(ev.CLIENT_EVENTS) == 11


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda s: s["type"])
def test_every_sample_parses_to_its_typed_event(sample):
    event = LiveProtocol().receive_text(json.dumps(sample))
    assert type(event) is ev.SERVER_EVENTS[sample["type"]]
    assert event.type == sample["type"] and event.event_id == sample.get("event_id")


def test_typed_fields_carry_what_the_server_said():
    proto = LiveProtocol()
    parsed = [proto.receive_text(json.dumps(s)) for s in SAMPLES]
    started = parsed[0]
    assert started.session.id == "sess_1" and started.session.voice == "marin"
    assert started.session.audio_format == m.AudioFormat(type="audio/pcm", rate=24000)
    assert started.session.expires_at == 1795000000 and started.client_event_id == "evt_start"
    assert parsed[2].audio == b"\x00\x00\x01\x00\x02\x00" and parsed[2].start_ms is None
    assert (parsed[3].start_ms, parsed[3].end_ms) == (1200, 1220)
    assert parsed[4].delta == "What's the" and (parsed[4].start_ms, parsed[4].end_ms) == (600, 800)
    delegated = parsed[11]
    assert delegated.delegation.target == "responses" and delegated.offset_ms == 4200
    assert parsed[12].function_call is None and parsed[12].response_id == "resp_1"
    call = parsed[13].function_call
    assert (call.call_id, call.name, json.loads(call.arguments)) == ("call_1", "set_volume", {"level": 40})
    assert parsed[14].finished and parsed[14].delegation_id == "item_1"
    assert parsed[15].usage.seconds == 61 and parsed[15].context_window.usage_ratio == 0.12
    assert parsed[16].context_window is None
    assert parsed[17].expired and parsed[17].usage.seconds == 3600 and not parsed[18].expired
    assert parsed[19].code == "invalid_audio" and parsed[19].error.param == "audio"
    assert parsed[20].code == "data_channel_permissions"


def test_unknown_server_events_are_kept_not_fatal():
    proto = LiveProtocol()
    for kind in ("transport.dtmf.received", "session.brand_new.thing"):
        event = proto.receive_text(json.dumps({"type": kind, "event_id": "e9", "digit": "5"}))
        assert isinstance(event, ev.UnknownEvent) and event.type == kind and event.data["digit"] == "5"
    assert proto.frames_rejected == 0
    # and new fields on known events are ignored
    event = proto.receive_text('{"type":"session.input_audio.muted","event_id":"e","obfuscation":"x"}')
    assert isinstance(event, ev.InputAudioMuted)


@pytest.mark.parametrize("frame, code, match", [
    ("{not json", "invalid_json", "JSON"),
    ('["a list"]', "invalid_event", "object"),
    ('{"no_type": 1}', "invalid_event", "type"),
    (b"\x00binary", "invalid_event", "binary"),
    ('{"type":"session.output_audio.delta"}', "missing_required_parameter", "delta"),
    ('{"type":"session.closed","session":{"id":"s"}}', "missing_required_parameter", "reason"),
    ('{"type":"session.input_transcript.delta","delta":"hi","start_ms":"soon","end_ms":2}', "invalid_value", "number"),
    ('{"type":"session.usage.updated","usage":{"seconds":"a lot"}}', "invalid_value", "number"),
    ('{"type":"response.event","event":{"no":"type"}}', "invalid_value", "nested event"),
    ('{"type":"response.event","event":[1,2]}', "invalid_value", "nested event|expected an object"),
    ('{"type":"session.started","session":"sess_1"}', "invalid_value", "object"),
    ('{"type":"error","error":{"message":"no type"}}', "missing_required_parameter", "error.type"),
])
def test_malformed_frames_are_rejected_with_a_typed_error(frame, code, match):
    proto = LiveProtocol()
    with pytest.raises(MalformedEvent, match=match) as err:
        proto.receive_text(frame)
    assert isinstance(err.value, RemoteProtocolError) and err.value.code == code
    assert proto.frames_rejected == 1
    assert isinstance(proto.receive_text('{"type":"session.input_audio.unmuted"}'), ev.InputAudioUnmuted)


def test_client_events_serialise_from_typed_models():
    proto = LiveProtocol()
    config = m.SessionConfig.build(
        instructions="Be brief.", voice="cedar", history=[m.InputMessage.text("user", "hi"),
                                                          m.InputMessage.text("assistant", "Hello!")],
        delegation=m.Delegation.responses_with("gpt-5.1", [m.FunctionTool(name="set_volume")]))
    start = json.loads(proto.send(ev.SessionStart(session=config, event_id="evt_start")))
    assert start["type"] == "session.start" and start["event_id"] == "evt_start"
    session = start["session"]
    assert session["model"] == "gpt-live-1" and session["audio"] == {
        "format": {"type": "audio/pcm", "rate": 24000}, "output": {"voice": "cedar"}}
    assert session["input"][1]["content"] == [{"type": "output_text", "text": "Hello!"}]
    assert session["delegation"]["responses"]["tools"] == [{"name": "set_volume", "type": "function"}]
    assert "turn_detection" not in json.dumps(start)
    append = json.loads(proto.send(ev.InputAudioAppend.from_audio(b"\x01\x00\x02\x00")))
    assert append == {"type": "session.input_audio.append", "audio": base64.b64encode(b"\x01\x00\x02\x00").decode()}
    thinking = json.loads(proto.send(ev.ThinkingAppend.general("The user is Ada.")))
    assert thinking == {"type": "session.thinking.append", "content": "The user is Ada.", "delegation_id": None}
    output = json.loads(proto.send(ev.ResponseItemCreate.function_output("call_1", '{"ok":true}')))
    assert output["item"] == {"type": "function_call_output", "call_id": "call_1", "output": '{"ok":true}'}
    for bare in (ev.InputAudioMute(), ev.InputAudioUnmute(), ev.ResponseCreate(), ev.SessionClose()):
        assert json.loads(proto.send(bare)) == {"type": bare.TYPE}


def test_the_server_side_parses_what_the_client_sends():
    client, server = LiveProtocol(), LiveProtocol(side="server")
    config = m.SessionConfig.build(voice="marin", history=[m.InputMessage.text("developer", "Ada")])
    echoed = server.receive_text(client.send(ev.SessionStart(session=config)))
    assert isinstance(echoed, ev.SessionStart) and echoed.session == config


@pytest.mark.parametrize("build, match", [
    (lambda: ev.InputAudioAppend.from_audio(b""), "empty"),
    (lambda: ev.InputAudioAppend.from_audio(b"\x01\x02\x03"), "even"),
    (lambda: m.SessionConfig.build(voice="robot"), "not a GPT-Live voice"),
    (lambda: m.SessionConfig.build(model=""), "model"),
    (lambda: m.SessionConfig.build(audio_format=m.AudioFormat(type="audio/pcm", rate=44100)), "44100"),
    (lambda: m.SessionConfig.build(history=[m.InputMessage.text("user", "x")] * 129), "128"),
    (lambda: m.SessionConfig.build(history=[m.InputMessage.text("user", "word " * 7000)] * 2), "8192"),
    (lambda: ev.CommentaryAppend.general("word " * 600), "500"),
    (lambda: ev.CommentaryAppend.general("  "), "non-empty"),
])
def test_the_device_cannot_build_what_the_reference_forbids(build, match):
    with pytest.raises(LocalProtocolError, match=match):
        build()


def test_only_client_events_can_be_sent():
    with pytest.raises(LocalProtocolError):
        LiveProtocol().send(ev.InputAudioMuted())
    with pytest.raises(LocalProtocolError):
        LiveProtocol(side="server").send(ev.SessionClose())


def test_fit_history_keeps_the_newest_messages_within_both_limits():
    history = [m.InputMessage.text("user" if n % 2 else "assistant", f"message {n}") for n in range(300)]
    kept = m.fit_history(history)
    assert len(kept) == m.MAX_INPUT_MESSAGES and kept[-1] == history[-1] and kept[0] == history[300 - 128]
    long = [m.InputMessage.text("user", "word " * 3000) for _ in range(5)]
    kept = m.fit_history(long)
    assert kept == long[-2:]
    m.check_history(kept)


def test_endpoint_sends_a_bearer_key_and_never_shows_it():
    endpoint = LiveEndpoint(api_key="sk-secret-123")
    assert endpoint.url == "wss://api.openai.com/v1/live/sessions"
    assert endpoint.headers() == {"Authorization": "Bearer sk-secret-123"}
    assert "sk-secret" not in repr(endpoint)
    assert LiveEndpoint(api_key="k", auth="api-key").headers() == {"api-key": "k"}


def _error(code, kind="invalid_request_error", param=None):
    return ev.LiveErrorEvent(error=m.LiveErrorDetail(type=kind, code=code, message="no sk-abc123 here", param=param))


def test_failures_are_classified_like_realtime():
    closed = ev.SessionClosed(reason="expired")
    assert isinstance(error_for(None, closed, 1000, started=True), SessionExpired)
    auth = error_for(_error("invalid_api_key", "authentication_error"), None, 1008, started=False)
    assert isinstance(auth, AuthenticationError) and "OPENAI_API_KEY" in str(auth) and not should_retry(auth)
    model = error_for(_error("model_not_found", param="session.model"), None, 1008, started=False)
    assert isinstance(model, RejectedSetupError) and "gpt-live-1" in str(model) and not should_retry(model)
    setup = error_for(_error("unknown_parameter", param="session.voice"), None, None, started=False)
    assert isinstance(setup, RejectedSetupError)
    content = error_for(None, ev.SessionClosed(reason="content"), 1000, started=True)
    assert isinstance(content, ServerError) and should_retry(content)
    lost = error_for(None, None, 1006, started=True)
    assert isinstance(lost, ConnectionLost) and should_retry(lost)
    after = error_for(_error("session_storage_failed"), None, 1011, started=True)
    assert isinstance(after, ConnectionLost) and "sk-abc" not in str(after)
