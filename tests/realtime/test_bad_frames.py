"""Malformed server frames against the real client connection, over a real WebSocket.

A small raw server on loopback sends a good ``session.created``, then one bad frame, then a
good event. The connection must skip (and count) the bad frame and hand over the good one;
only a first frame that cannot start a session ends the connection.
"""

import base64
import json
import logging

import pytest
from websockets.asyncio.server import serve

from device.errors import RemoteProtocolError
from device.realtime import events as ev
from device.realtime.connection import Endpoint, RealtimeConnection
from device.realtime.dialect import Dialect, parse_session

SESSION = {"type": "session.created", "event_id": "e0",
           "session": {"id": "sess_1", "model": "gpt-realtime", "expires_at": 2_000_000_000,
                       "audio": {"input": {"format": {"type": "audio/pcm", "rate": 24000}},
                                 "output": {"voice": "marin"}}}}
GOOD = {"type": "input_audio_buffer.cleared", "event_id": "good"}


def delta(payload: str) -> dict:
    return {"type": "response.output_audio.delta", "response_id": "r", "item_id": "i", "delta": payload}


async def serve_frames(frames: list):
    """A server that sends ``frames`` (dicts are JSON-encoded, str/bytes go as they are)."""

    async def handler(ws):
        for frame in frames:
            await ws.send(json.dumps(frame) if isinstance(frame, dict) else frame)
        await ws.wait_closed()

    return await serve(handler, "127.0.0.1", 0)


async def open_against(server) -> RealtimeConnection:
    port = server.sockets[0].getsockname()[1]
    return await RealtimeConnection.open(Endpoint(url=f"ws://127.0.0.1:{port}", model="gpt-realtime", api_key="sk-test"),
                                         open_timeout_s=5, ping_interval_s=None)


async def survive(bad, kind: str) -> RealtimeConnection:
    async with await serve_frames([SESSION, bad, GOOD]) as server:
        conn = await open_against(server)
        try:
            event = await conn.recv()
        finally:
            await conn.close()
    assert event.event_id == "good", "the bad frame was not skipped"
    assert conn.stats.bad_frames == {kind: 1}
    return conn


DEEP = "[" * 100_000 + "]" * 100_000


@pytest.mark.parametrize("bad, kind", [
    (DEEP, "depth"),
    ('{"type":"x","a":' * 100_000, "depth"),
    ("{not json", "json"),
    ("[1, 2]", "not_object"),
    ('{"event_id": "no type"}', "no_type"),
    (b"\x00\x01binary", "binary"),
    ({"type": "session.updated", "session": 5}, "field_type"),
    ({"type": "response.created", "response": "r"}, "field_type"),
    ({"type": "conversation.item.added", "item": ["not", "an", "object"]}, "field_type"),
    ({"type": "error", "error": {"type": "server_error"}}, "missing_field"),
    (delta("!!not base64!!"), "audio"),
    (delta("QUJ"), "audio"),  # truncated: not a whole base64 quantum
], ids=lambda v: v if isinstance(v, str) and len(v) < 20 else None)
async def test_bad_frame_is_counted_and_skipped(bad, kind):
    await survive(bad, kind)


async def test_odd_byte_audio_delta_is_played_without_its_half_sample():
    odd = base64.b64encode(b"\x01\x02\x03").decode()
    async with await serve_frames([SESSION, delta(odd)]) as server:
        conn = await open_against(server)
        event = await conn.recv()
        await conn.close()
    assert isinstance(event, ev.AudioDelta)
    assert event.pcm == b"\x01\x02" and conn.stats.bad_frames == {}


def test_hand_built_bad_delta_gives_no_audio_instead_of_raising():
    assert ev.AudioDelta(response_id="r", item_id="i", delta="%%%").pcm == b""


async def test_session_created_with_string_audio_input_opens_with_defaults():
    odd = json.loads(json.dumps(SESSION))
    odd["session"]["audio"]["input"] = "pcm16"
    odd["session"]["audio"]["output"] = 7
    async with await serve_frames([odd]) as server:
        conn = await open_against(server)
        await conn.close()
    assert conn.session.id == "sess_1" and conn.session.input_rate_hz is None and conn.session.voice is None


async def test_session_created_whose_session_is_a_number_ends_the_handshake_with_a_message():
    async with await serve_frames([{"type": "session.created", "session": 42}]) as server:
        with pytest.raises(RemoteProtocolError, match="first frame is unusable.*expected an object"):
            await open_against(server)


@pytest.mark.parametrize("session", [
    {"audio": {"input": "x", "output": []}},
    {"audio": {"input": {"format": "pcm16", "turn_detection": {"threshold": "high", "create_response": 1}}}},
    {"expires_at": True, "tools": [5, {"name": 3}], "output_modalities": "audio", "id": 9},
    {"expires_at": float("inf"), "turn_detection": ["server_vad"], "modalities": 5},
])
def test_parse_session_reads_wrong_types_as_absent(session):
    info = parse_session(session, Dialect.GA)
    assert info.expires_at is None and info.id is None
    assert info.tools == () and all(isinstance(m, str) for m in info.output_modalities)
    if info.turn_detection is not None:
        assert isinstance(info.turn_detection.threshold, float) and info.turn_detection.create_response is True


async def test_each_kind_is_logged_once_at_warning(caplog):
    frames = [SESSION] + ["{bad"] * 5 + [GOOD]
    caplog.set_level(logging.DEBUG, logger="device.realtime.connection")
    async with await serve_frames(frames) as server:
        conn = await open_against(server)
        await conn.recv()
        await conn.close()
    skipped = [r for r in caplog.records if "malformed server frame" in r.getMessage()]
    assert len(skipped) == 5 and conn.stats.bad_frames == {"json": 5}
    assert sum(r.levelno == logging.WARNING for r in skipped) <= 1


def test_a_frame_over_the_size_bound_is_refused_before_parsing():
    from device.realtime.protocol import MAX_FRAME_BYTES, RealtimeProtocol

    proto = RealtimeProtocol()
    with pytest.raises(RemoteProtocolError, match="too large"):
        proto.receive_text('{"type":"x","pad":"' + "a" * MAX_FRAME_BYTES + '"}')
    assert proto.rejected == {"too_large": 1}


async def test_a_frame_over_the_websocket_limit_ends_the_connection_as_retryable():
    from device.errors import ConnectionLost, should_retry
    from device.realtime.protocol import MAX_FRAME_BYTES

    huge = json.dumps(delta(base64.b64encode(b"\0" * (MAX_FRAME_BYTES // 4 * 3 + 3)).decode()))
    async with await serve_frames([SESSION, huge]) as server:
        conn = await open_against(server)
        with pytest.raises(ConnectionLost) as err:
            await conn.recv()
    assert should_retry(err.value) and "1009" in str(err.value)


def test_brackets_inside_strings_do_not_count_as_nesting():
    from device.realtime.protocol import RealtimeProtocol, nesting_depth_ok

    text = json.dumps({"type": "response.output_text.delta", "response_id": "r", "item_id": "i",
                       "delta": "[{" * 500 + '\\"[' * 100})
    assert nesting_depth_ok(text)
    assert RealtimeProtocol().receive_text(text).delta.startswith("[{[{")
    assert not nesting_depth_ok("[" * 65 + "]" * 65) and nesting_depth_ok("[" * 64 + "]" * 64)
