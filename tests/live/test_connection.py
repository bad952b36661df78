"""The device's GPT-Live connection against the Live simulator over a real WebSocket on loopback:
handshake, a spoken exchange, a delegated tool call, clean close, expiry, and the handshake
failures classified as for Realtime (no retry loop, a fix in every message)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import subprocess
import sys

import pytest

from device.errors import AuthenticationError, ConnectionLost, RejectedSetupError, SessionExpired, should_retry
from device.live import events as ev
from device.live import models as m
from device.live.connection import LiveConnection, LiveEndpoint
from device.simulator.live_server import LiveSimulator
from device.simulator.live_session import LiveSimOptions

CHUNK = 960  # 20 ms at 24 kHz


@pytest.fixture
async def live_factory():
    started: list[LiveSimulator] = []

    async def start(**options) -> LiveSimulator:
        options.setdefault("seed", 2)
        sim = await LiveSimulator(LiveSimOptions(**options)).start()
        started.append(sim)
        return sim

    yield start
    for sim in started:
        await sim.stop()


def endpoint(sim: LiveSimulator, key: str = "sk-test", model: str = "gpt-live-1") -> LiveEndpoint:
    return LiveEndpoint(url=sim.url, model=model, api_key=key)


async def stream_until(conn: LiveConnection, pcm: bytes, done, *, max_ms: int = 60_000,
                       chunk: int = CHUNK, pcm16: bool = True, silence: bytes = b"\x00") -> list[ev.LiveServerEvent]:
    """Send ``pcm`` then silence (as a device streams its microphone) until ``done(events)``.

    Every 50 chunks an (idempotent) unmute is sent and its acknowledgement awaited: the server
    answers in order, so by then every event the earlier audio caused has arrived."""
    got: list[ev.LiveServerEvent] = []

    async def read() -> None:
        async for event in conn:
            got.append(event)

    reader = asyncio.create_task(read())
    audio = pcm + silence * (chunk // 20 * max_ms)
    try:
        for n, i in enumerate(range(0, len(audio), chunk)):
            if n % 50 == 0:
                await sync(conn, got, f"evt_sync_{n}")
            if done(got):
                return got
            await conn.send(ev.InputAudioAppend.from_audio(audio[i:i + chunk], pcm16=pcm16))
        raise AssertionError(f"not done after {max_ms} ms of audio: {[e.type for e in got]}")
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader  # cancelling recv is safe: no message is lost


async def sync(conn: LiveConnection, got: list, sync_id: str) -> None:
    await conn.send(ev.InputAudioUnmute(event_id=sync_id))
    for _ in range(6000):
        if any(isinstance(e, ev.InputAudioUnmuted) and e.client_event_id == sync_id for e in got):
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"no acknowledgement of {sync_id}")


def said(events, kind=ev.OutputTranscriptDelta) -> str:
    return "".join(e.delta for e in events if isinstance(e, kind))


async def test_conversation_through_the_connection(live_factory, speech_24k):
    sim = await live_factory()
    config = m.SessionConfig.build(instructions="Be brief.", voice="sage")
    conn = await LiveConnection.open(endpoint(sim), config)
    assert conn.session.id.startswith("sess_") and conn.session.voice == "sage"
    assert conn.session.audio_format.bytes_per_ms == 48
    got = await stream_until(conn, speech_24k, lambda got: said(got) == "You said: go forward ten meters.")
    assert said(got, ev.InputTranscriptDelta) == "go forward ten meters"
    audio = b"".join(e.audio for e in got if isinstance(e, ev.OutputAudioDelta))
    assert len(audio) > 48 * 1500
    await conn.send(ev.SessionClose())
    rest = [event async for event in conn]  # iteration ends cleanly after close_requested
    assert isinstance(rest[-1], ev.SessionClosed) and rest[-1].reason == "close_requested"
    assert conn.closed_event is rest[-1]


async def test_delegated_tool_call_through_the_connection(live_factory, speech_24k):
    sim = await live_factory(delegation_ack="")
    tool = m.FunctionTool(name="move_forward", description="Drive forward",
                          parameters={"type": "object", "properties": {"meters": {"type": "integer"}}})
    config = m.SessionConfig.build(delegation=m.Delegation.responses_with("gpt-5.1", [tool]))
    conn = await LiveConnection.open(endpoint(sim), config)

    def call(got):
        return next((e.function_call for e in got if isinstance(e, ev.ResponseEvent) and e.function_call), None)

    got = await stream_until(conn, speech_24k, call)
    assert call(got).name == "move_forward"
    assert any(isinstance(e, ev.DelegationCreated) and e.delegation.target == "responses" for e in got)
    await conn.send(ev.ResponseItemCreate.function_output(call(got).call_id, json.dumps({"moved": 3})))
    await conn.send(ev.ResponseCreate())
    got = await stream_until(conn, b"", lambda got: said(got) == "Done. The result is moved 3.")
    assert any(isinstance(e, ev.ResponseEvent) and e.finished for e in got)
    await conn.close()


async def test_expiry_raises_session_expired(live_factory):
    sim = await live_factory(session_limit_s=0.5)
    conn = await LiveConnection.open(endpoint(sim), m.SessionConfig.build())
    seen = []
    with pytest.raises(SessionExpired) as expired:
        async for event in conn:
            seen.append(event)
    assert isinstance(seen[-1], ev.SessionClosed) and seen[-1].expired
    assert should_retry(expired.value)


@pytest.mark.parametrize("bad_key", ["http", "in_band"])
async def test_bad_key_is_an_authentication_error(live_factory, bad_key):
    sim = await live_factory(api_keys=frozenset({"sk-good"}), bad_key=bad_key)
    with pytest.raises(AuthenticationError) as err:
        await LiveConnection.open(endpoint(sim, key="sk-wrong-key-123"), m.SessionConfig.build())
    assert "OPENAI_API_KEY" in str(err.value) and "sk-wrong" not in str(err.value)
    assert not should_retry(err.value)


async def test_refused_model_is_a_rejected_setup(live_factory):
    sim = await live_factory()
    with pytest.raises(RejectedSetupError) as err:
        await LiveConnection.open(endpoint(sim), m.SessionConfig.build(model="gpt-realtime"))
    assert err.value.code == "model_not_found" and "[realtime] model" in str(err.value)
    assert not should_retry(err.value)


async def test_wrong_path_and_unreachable_server(live_factory):
    sim = await live_factory()
    wrong = LiveEndpoint(url=f"ws://127.0.0.1:{sim.port}/v1/realtime", api_key="sk")
    with pytest.raises(RejectedSetupError, match="HTTP 404"):
        await LiveConnection.open(wrong, m.SessionConfig.build())
    port = sim.port
    await sim.stop()
    with pytest.raises(ConnectionLost):
        await LiveConnection.open(LiveEndpoint(url=f"ws://127.0.0.1:{port}/v1/live/sessions", api_key="sk"),
                                  m.SessionConfig.build(), open_timeout_s=5)


async def test_cli_runs_the_live_simulator():
    proc = subprocess.Popen([sys.executable, "-m", "device.cli", "simulator", "--api", "live", "--port", "0"],
                            stdout=subprocess.PIPE, text=True, env=dict(os.environ))
    try:
        line = await asyncio.to_thread(proc.stdout.readline)
        match = re.search(r"(ws://\S+/v1/live/sessions)", line)
        assert match, line
        conn = await LiveConnection.open(LiveEndpoint(url=match.group(1), api_key="sk-any"), m.SessionConfig.build())
        assert conn.session.model == "gpt-live-1"
        await conn.close()
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)


async def test_g711_session_through_the_connection(live_factory, speech_24k):
    from device.simulator.live_audio import from_work

    sim = await live_factory()
    config = m.SessionConfig.build(audio_format=m.AudioFormat(type="audio/pcmu", rate=8000))
    conn = await LiveConnection.open(endpoint(sim), config)
    assert conn.session.audio_format == m.AudioFormat(type="audio/pcmu", rate=8000)
    ulaw = from_work(speech_24k, "audio/pcmu", 8000)

    def replied(got) -> bool:
        heard = said(got, ev.InputTranscriptDelta)
        return bool(heard) and said(got) == f"You said: {heard}."

    # 20 ms of 8 kHz mu-law per append; mu-law silence is 0xFF, not zero bytes
    got = await stream_until(conn, ulaw, replied, chunk=160, pcm16=False, silence=b"\xff")
    # Telephone-band audio costs the offline recogniser a word or two; the reply echoes what it heard.
    heard = said(got, ev.InputTranscriptDelta)
    assert replied(got) and heard.startswith("go forward"), (heard, said(got))
    assert len(next(e for e in got if isinstance(e, ev.OutputAudioDelta)).audio) == 800  # 100 ms at 8 kHz
    await conn.close()


async def test_a_server_that_never_answers_session_start_is_a_lost_connection():
    from websockets.asyncio.server import serve

    received = []

    async def silent(ws):
        received.append(await ws.recv())
        await ws.wait_closed()

    async with serve(silent, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        with pytest.raises(ConnectionLost, match="no session.started"):
            await LiveConnection.open(LiveEndpoint(url=f"ws://127.0.0.1:{port}/v1/live/sessions", api_key="sk"),
                                      m.SessionConfig.build(), open_timeout_s=0.5)
    assert json.loads(received[0])["type"] == "session.start"


async def test_a_dropped_link_is_a_lost_connection_to_retry(live_factory):
    sim = await live_factory()
    conn = await LiveConnection.open(endpoint(sim), m.SessionConfig.build())
    await sim.drop_all()
    with pytest.raises(ConnectionLost) as lost:
        await conn.recv()
    assert should_retry(lost.value)


async def test_the_link_deflates_what_it_sends_at_the_fastest_level(live_factory):
    """As the Realtime link (tests/realtime/test_deflate.py counts its bytes on the wire): the
    negotiated permessage-deflate compresses at zlib's level 1, not websockets' default 6."""
    from websockets.extensions.permessage_deflate import PerMessageDeflate

    sim = await live_factory()
    conn = await LiveConnection.open(endpoint(sim), m.SessionConfig.build(instructions="Be brief."), ping_interval_s=None)
    try:
        (deflate,) = [e for e in conn._ws.protocol.extensions if isinstance(e, PerMessageDeflate)]
        assert deflate.compress_settings["level"] == 1
    finally:
        await conn.close()
