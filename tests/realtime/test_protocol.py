"""The sans-I/O protocol core: parsing, serialising, dialects. No sockets."""

import base64
import json
import random

import pytest

from device.errors import (AuthenticationError, ConnectionLost, LocalProtocolError, RejectedSetupError,
                           RemoteProtocolError, SessionExpired, should_retry)
from device.realtime import events as ev
from device.realtime.backoff import backoff
from device.realtime.connection import Endpoint, error_for
from device.realtime.dialect import Dialect, parse_session, render_response_params, render_session
from device.realtime.models import ErrorDetail, Item
from device.realtime.protocol import InvalidFrame, RealtimeProtocol, UnsupportedEventType
from device.realtime.session import SessionSettings, Tool, TurnDetection


def test_malformed_json_is_a_remote_protocol_error_and_counted():
    proto = RealtimeProtocol()
    with pytest.raises(RemoteProtocolError):
        proto.receive_text("{not json")
    with pytest.raises(RemoteProtocolError):
        proto.receive_text('["a list"]')
    with pytest.raises(RemoteProtocolError, match="missing required field 'delta'"):
        proto.receive_text('{"type":"response.output_audio.delta","response_id":"r","item_id":"i"}')
    assert proto.frames_rejected == 3
    # and the protocol object keeps working afterwards
    assert isinstance(proto.receive_text('{"type":"input_audio_buffer.cleared"}'), ev.InputAudioCleared)


def test_unknown_server_event_is_kept_not_fatal():
    event = RealtimeProtocol().receive_text('{"type":"response.mcp_call.in_progress","event_id":"e1","x":1}')
    assert isinstance(event, ev.UnknownEvent)
    assert event.type == "response.mcp_call.in_progress" and event.data["x"] == 1


def test_unknown_fields_are_ignored():
    event = RealtimeProtocol().receive_text(json.dumps({
        "type": "response.output_audio_transcript.delta", "response_id": "r", "item_id": "i",
        "delta": "hi", "obfuscation": "xyz", "brand_new_field": {"a": 1}}))
    assert event.delta == "hi"


def test_wrong_field_type_is_rejected():
    with pytest.raises(RemoteProtocolError, match="expected a string"):
        RealtimeProtocol().receive_text('{"type":"input_audio_buffer.speech_started","audio_start_ms":1,"item_id":5}')


def test_client_can_only_send_client_events():
    proto = RealtimeProtocol()
    with pytest.raises(LocalProtocolError):
        proto.send(ev.InputAudioCleared())
    frame = json.loads(proto.send(ev.ItemTruncate(item_id="item_1", content_index=0, audio_end_ms=1500)))
    assert frame == {"type": "conversation.item.truncate", "item_id": "item_1", "content_index": 0, "audio_end_ms": 1500}


def test_append_carries_base64_pcm_and_refuses_over_15_mib():
    pcm = bytes(range(256)) * 4
    frame = json.loads(RealtimeProtocol().send(ev.InputAudioAppend.from_pcm(pcm)))
    assert base64.b64decode(frame["audio"]) == pcm
    with pytest.raises(LocalProtocolError):
        ev.InputAudioAppend.from_pcm(bytes(15 * 1024 * 1024 + 2))


def test_assistant_history_items_use_the_dialects_part_types():
    item = Item.assistant_text("Earlier answer")
    ga = json.loads(RealtimeProtocol(Dialect.GA).send(ev.ItemCreate(item=item)))
    beta = json.loads(RealtimeProtocol(Dialect.BETA).send(ev.ItemCreate(item=item)))
    assert ga["item"]["content"][0]["type"] == "output_text"
    assert beta["item"]["content"][0]["type"] == "text"


def test_server_side_parses_client_events_and_rejects_unknown_types_like_the_real_server():
    server = RealtimeProtocol(side="server")
    assert isinstance(server.receive_text('{"type":"response.cancel"}'), ev.ResponseCancel)
    with pytest.raises(UnsupportedEventType) as err:
        server.receive_text('{"type":"tool.output"}')
    assert err.value.code == "invalid_value" and "'response.cancel'" in str(err.value)
    with pytest.raises(InvalidFrame) as err:
        server.receive_text('{"type":"conversation.item.truncate","item_id":"i","content_index":0}')
    assert err.value.code == "missing_required_parameter" and err.value.param == "audio_end_ms"
    with pytest.raises(InvalidFrame) as err:
        server.receive_text(b"\x00binary")
    assert err.value.code == "invalid_event"


def test_server_side_renders_beta_names_and_drops_ga_only_events():
    beta = RealtimeProtocol(Dialect.BETA, side="server")
    frame = json.loads(beta.send(ev.AudioDelta.from_pcm(b"\0\0", response_id="r", item_id="i")))
    assert frame["type"] == "response.audio.delta"
    added = json.loads(beta.send(ev.ConversationItemAdded(item=Item.assistant_text("x"))))
    assert added["type"] == "conversation.item.created" and added["item"]["content"][0]["type"] == "text"
    assert beta.send(ev.ConversationItemDone(item=Item.assistant_text("x"))) is None


SETTINGS = SessionSettings(instructions="Be brief.", voice="cedar", tools=(Tool(name="get_time"),),
                           turn_detection=TurnDetection(silence_duration_ms=400), max_output_tokens=500)


def test_render_session_ga_shape():
    session = render_session(SETTINGS, Dialect.GA)
    assert session["type"] == "realtime"
    assert session["audio"]["input"]["format"] == {"type": "audio/pcm", "rate": 24000}
    assert session["audio"]["input"]["turn_detection"]["silence_duration_ms"] == 400
    assert session["audio"]["output"]["voice"] == "cedar"
    assert session["max_output_tokens"] == 500
    assert not {"voice", "turn_detection", "modalities", "temperature", "max_response_output_tokens"} & set(session)


def test_render_session_beta_shape():
    session = render_session(SETTINGS, Dialect.BETA)
    assert session["modalities"] == ["text", "audio"] and session["voice"] == "cedar"
    assert session["input_audio_format"] == "pcm16" and session["max_response_output_tokens"] == 500
    assert "type" not in session and "audio" not in session


@pytest.mark.parametrize("dialect", list(Dialect))
def test_rendered_session_reads_back(dialect):
    info = parse_session(render_session(SETTINGS, dialect), dialect)
    assert info.voice == "cedar" and info.instructions == "Be brief." and info.tools == ("get_time",)
    assert info.turn_detection.silence_duration_ms == 400 and info.output_modalities == ("audio",)


def test_response_params_per_dialect():
    assert render_response_params(Dialect.GA, output_modalities=("audio",)) == {"output_modalities": ["audio"]}
    assert render_response_params(Dialect.BETA, output_modalities=("audio",)) == {"modalities": ["text", "audio"]}
    assert render_response_params(Dialect.GA) is None


def test_unknown_dialect_names_the_key():
    with pytest.raises(Exception, match=r"\[realtime\] dialect = 'v2'"):
        Dialect.parse("v2")


def test_endpoint_headers_and_urls_never_show_the_key():
    openai = Endpoint(url="wss://api.openai.com/v1/realtime", model="gpt-realtime", api_key="sk-secret-1234")
    assert openai.ws_url() == "wss://api.openai.com/v1/realtime?model=gpt-realtime"
    assert openai.headers() == {"Authorization": "Bearer sk-secret-1234"}
    assert "sk-secret" not in repr(openai)
    beta = Endpoint(url="wss://x/v1/realtime", model="m", api_key="k", dialect=Dialect.BETA)
    assert beta.headers()["OpenAI-Beta"] == "realtime=v1"
    azure = Endpoint(url="wss://res.openai.azure.com/openai/realtime?api-version=2025-04-01-preview",
                     model="dep1", api_key="az")
    assert "deployment=dep1" in azure.ws_url() and azure.headers() == {"api-key": "az"}


def _err(code):
    return ev.ErrorEvent(error=ErrorDetail(type="invalid_request_error", code=code, message="m"))


def test_close_classification_and_retry_decision():
    assert isinstance(error_for(_err("invalid_api_key"), 3000), AuthenticationError)
    assert isinstance(error_for(None, 3000), AuthenticationError)
    beta = error_for(_err("beta_api_shape_disabled"), 4000)
    assert isinstance(beta, RejectedSetupError) and 'dialect = "ga"' in str(beta)
    assert isinstance(error_for(_err("session_expired"), 1001), SessionExpired)
    assert isinstance(error_for(None, 1001, "Your session hit the maximum duration of 60 minutes."), SessionExpired)
    assert isinstance(error_for(None, 1006), ConnectionLost)
    assert not should_retry(error_for(_err("invalid_api_key"), 3000))
    assert not should_retry(beta)
    assert should_retry(error_for(None, 1006)) and should_retry(error_for(_err("session_expired"), 1001))


def test_backoff_is_full_jitter_exponential_and_capped():
    rng = random.Random(7)
    delays = [d for d, _ in zip(backoff(base_s=0.5, cap_s=8, rng=rng), range(12))]
    ceilings = [min(8, 0.5 * 2 ** n) for n in range(12)]
    assert all(0 <= d <= c for d, c in zip(delays, ceilings))
    again = [d for d, _ in zip(backoff(base_s=0.5, cap_s=8, rng=random.Random(7)), range(12))]
    assert delays == again  # the randomness is an input
    many = [d for d, _ in zip(backoff(base_s=0.5, cap_s=8, rng=random.Random(1)), range(2000))][10:]
    assert max(many) <= 8 and max(many) > 7 and min(many) < 1  # jitter spans the whole range at the cap
    with pytest.raises(ValueError):
        next(backoff(base_s=0))
