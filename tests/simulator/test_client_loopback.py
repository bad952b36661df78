"""The device's protocol client against the built-in simulator over a real loopback WebSocket."""

from __future__ import annotations

import asyncio
import json

import numpy as np
import pytest
from websockets.asyncio.server import serve

from device.errors import AuthenticationError, ConnectionLost, RejectedSetupError, SessionExpired, should_retry
from device.realtime import events as ev
from device.realtime.connection import Endpoint, RealtimeConnection
from device.realtime.dialect import Dialect, render_session
from device.realtime.models import Item
from device.realtime.session import SessionSettings, Tool, TurnDetection

KEY = "sk-test-key-0000"


async def open_conn(sim, **kw) -> RealtimeConnection:
    endpoint = Endpoint(url=sim.url, model=kw.pop("model", "gpt-realtime"), api_key=kw.pop("api_key", KEY), **kw)
    return await RealtimeConnection.open(endpoint, ping_interval_s=kw.pop("ping", None))


async def collect(conn, until=ev.ResponseDone, limit=5000):
    got = []
    for _ in range(limit):
        event = await asyncio.wait_for(conn.recv(), 30)
        got.append(event)
        if isinstance(event, until):
            return got
    raise AssertionError("no " + until.__name__)


async def configure(conn, **settings):
    settings.setdefault("noise_reduction", None)
    await conn.send(ev.SessionUpdate(session=render_session(SessionSettings(**settings), conn.endpoint.dialect)))
    (updated,) = [e for e in await collect(conn, ev.SessionUpdated)]
    return updated


def clip_onset_ms(pcm: bytes, dbfs: float = -45.0) -> int:
    """Where the clip's speech starts: the first 10 ms frame louder than ``dbfs``."""
    frames = np.frombuffer(pcm, dtype="<i2")[: len(pcm) // 2 // 240 * 240].reshape(-1, 240) / 32768.0
    levels = 20 * np.log10(np.sqrt((frames ** 2).mean(axis=1)) + 1e-9)
    return int(np.argmax(levels >= dbfs)) * 10


def types(events):
    return [e.type for e in events if not isinstance(e, (ev.AudioDelta, ev.AudioTranscriptDelta))]


async def test_text_turn_gets_a_spoken_reply_in_canonical_order(simulator):
    conn = await open_conn(simulator)
    assert conn.session.expires_at and conn.session.id.startswith("sess_")
    await conn.send(ev.ItemCreate(item=Item.user_text("hello there")))
    await conn.send(ev.ResponseCreate())
    got = await collect(conn)
    assert types(got) == [
        "conversation.item.added", "conversation.item.done", "response.created",
        "response.output_item.added", "conversation.item.added", "response.content_part.added",
        "response.output_audio.done", "response.output_audio_transcript.done", "response.content_part.done",
        "conversation.item.done", "response.output_item.done", "response.done"]
    audio = b"".join(e.pcm for e in got if isinstance(e, ev.AudioDelta))
    transcript = "".join(e.delta for e in got if isinstance(e, ev.AudioTranscriptDelta))
    assert transcript == "You said: hello there."
    assert len(audio) > 24000  # over half a second of 24 kHz speech
    done = got[-1].response
    assert done.status == "completed" and done.output[0].text == transcript and done.audio_tokens > 0
    assert isinstance(await conn.recv(), ev.RateLimitsUpdated)  # GA: after response.done
    await conn.close()


async def test_audio_turn_with_server_vad_from_real_speech(simulator, speech_24k):
    conn = await open_conn(simulator)
    await configure(conn, transcription_model="gpt-4o-mini-transcribe",
                    turn_detection=TurnDetection(silence_duration_ms=500, prefix_padding_ms=300))
    audio = bytes(48 * 400) + speech_24k + bytes(48 * 800)
    for i in range(0, len(audio), 960):
        await conn.send(ev.InputAudioAppend.from_pcm(audio[i:i + 960]))
    got = await collect(conn)
    started = next(e for e in got if isinstance(e, ev.SpeechStarted))
    stopped = next(e for e in got if isinstance(e, ev.SpeechStopped))
    committed = next(e for e in got if isinstance(e, ev.InputAudioCommitted))
    assert started.item_id == stopped.item_id == committed.item_id
    onset_ms = clip_onset_ms(speech_24k)
    assert abs(started.audio_start_ms - (400 + onset_ms - 300)) <= 20  # the onset minus the prefix padding
    assert stopped.audio_end_ms > 400 + len(speech_24k) // 48 - 500
    heard = next(e for e in got if isinstance(e, ev.InputTranscriptionCompleted))
    assert heard.transcript == "go forward ten meters"
    reply = "".join(e.delta for e in got if isinstance(e, ev.AudioTranscriptDelta))
    assert reply == "You said: go forward ten meters."
    await conn.close()


async def test_manual_commit_needs_100_ms(simulator):
    conn = await open_conn(simulator)
    await configure(conn, turn_detection=None)
    await conn.send(ev.InputAudioAppend.from_pcm(bytes(48 * 50)))
    await conn.send(ev.InputAudioCommit())
    err = await conn.recv()
    assert isinstance(err, ev.ErrorEvent) and err.code == "input_audio_buffer_commit_empty"
    assert "buffer only has 50.00ms" in err.error.message
    await conn.send(ev.InputAudioAppend.from_pcm(bytes(48 * 100)))
    await conn.send(ev.InputAudioCommit())
    assert isinstance(await conn.recv(), ev.InputAudioCommitted)


async def test_barge_in_by_speech_cancels_with_turn_detected_and_truncate_rules(simulator_factory, speech_24k):
    sim = await simulator_factory(speedup=2.0)
    conn = await open_conn(sim)
    await configure(conn)
    await conn.send(ev.ItemCreate(item=Item.user_text("Please tell me a rather long story about the sea")))
    await conn.send(ev.ResponseCreate())
    played_ms, item_id = 0, None
    while played_ms < 300:
        event = await conn.recv()
        if isinstance(event, ev.AudioDelta):
            played_ms += len(event.pcm) // 48
            item_id = event.item_id
    for i in range(0, len(speech_24k) // 2, 960):  # the person talks over the reply
        await conn.send(ev.InputAudioAppend.from_pcm(speech_24k[i:i + 960]))
    got = await collect(conn)
    assert any(isinstance(e, ev.SpeechStarted) for e in got)
    done = got[-1].response
    assert done.status == "cancelled" and done.reason == "turn_detected"
    assert done.output[0].status == "incomplete"
    await conn.send(ev.ItemTruncate(item_id=item_id, content_index=0, audio_end_ms=played_ms))
    truncated = await collect(conn, ev.ConversationItemTruncated)
    assert truncated[-1].audio_end_ms == played_ms
    # past the end of what was received: the real server's error, and the link survives
    await conn.send(ev.ItemTruncate(item_id=item_id, content_index=0, audio_end_ms=played_ms + 60000))
    err = (await collect(conn, ev.ErrorEvent))[-1]
    assert err.code == "invalid_value" and "is already shorter than" in err.error.message
    await conn.send(ev.ResponseCancel())
    err = (await collect(conn, ev.ErrorEvent))[-1]
    assert err.code == "response_cancel_not_active"
    assert conn.is_open


async def test_client_cancel_and_one_active_response(simulator_factory):
    sim = await simulator_factory(speedup=1.0)
    conn = await open_conn(sim)
    await conn.send(ev.ItemCreate(item=Item.user_text("say something long please right now")))
    await conn.send(ev.ResponseCreate())
    await collect(conn, ev.ResponseCreated)
    await conn.send(ev.ResponseCreate())
    err = (await collect(conn, ev.ErrorEvent))[-1]
    assert err.code == "conversation_already_has_active_response"
    await conn.send(ev.ResponseCancel())
    done = (await collect(conn))[-1]
    assert done.response.status == "cancelled" and done.response.reason == "client_cancelled"


async def test_function_call_round_trip(simulator):
    conn = await open_conn(simulator)
    volume = Tool(name="set_volume", description="Set the speaker volume.",
                  parameters={"type": "object", "properties": {"level": {"type": "integer"}}})
    await configure(conn, tools=(volume,))
    await conn.send(ev.ItemCreate(item=Item.user_text("Set the volume to 7")))
    await conn.send(ev.ResponseCreate())
    got = await collect(conn)
    args = next(e for e in got if isinstance(e, ev.FunctionCallArgumentsDone))
    assert args.name == "set_volume" and json.loads(args.arguments) == {"level": 7}
    deltas = "".join(e.delta for e in got if isinstance(e, ev.FunctionCallArgumentsDelta))
    assert deltas == args.arguments
    call = got[-1].response.output[0]
    assert call.type == "function_call" and call.call_id == args.call_id
    await conn.send(ev.ItemCreate(item=Item.function_output("call_unknown", "{}")))
    assert (await collect(conn, ev.ErrorEvent))[-1].error.param == "item.call_id"
    await conn.send(ev.ItemCreate(item=Item.function_output(args.call_id, json.dumps({"volume": 7}))))
    await conn.send(ev.ResponseCreate())
    got = await collect(conn)
    assert "".join(e.delta for e in got if isinstance(e, ev.AudioTranscriptDelta)) == "Done. The result is volume 7."


async def test_session_update_beta_field_on_ga_is_rejected_whole(simulator):
    conn = await open_conn(simulator)
    frame = json.dumps({"type": "session.update", "session": {"type": "realtime", "instructions": "NEW",
                                                               "voice": "cedar"}})
    await conn._ws.send(frame)  # a hand-built beta-shaped update, which the typed client never sends
    err = await conn.recv()
    assert err.code == "unknown_parameter" and err.error.param == "session.voice"
    updated = await configure(conn, instructions="kept")
    assert updated.session["instructions"] == "kept"


async def test_unknown_and_malformed_server_frames_are_survived():
    async def handler(ws):
        await ws.send(json.dumps({"type": "session.created", "session": {"id": "sess_x", "expires_at": 0}}))
        await ws.send("{broken json")
        await ws.send(json.dumps({"type": "response.output_audio.delta", "response_id": "r"}))  # missing fields
        await ws.send(json.dumps({"type": "some.future_event", "x": 1}))
        await ws.send(json.dumps({"type": "input_audio_buffer.cleared"}))
        await ws.wait_closed()

    async with serve(handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        conn = await RealtimeConnection.open(Endpoint(url=f"ws://127.0.0.1:{port}/v1/realtime", model="m", api_key="k"))
        assert conn.session.expires_at is None  # 0 means "not told": fall back to the configured limit
        assert isinstance(await conn.recv(), ev.UnknownEvent)
        assert isinstance(await conn.recv(), ev.InputAudioCleared)
        assert conn.protocol_errors == 2
        await conn.close()


async def test_session_expiry_is_a_normal_end(simulator_factory):
    sim = await simulator_factory(session_limit_s=1.0)
    conn = await open_conn(sim)
    with pytest.raises(SessionExpired) as end:
        while True:
            await asyncio.wait_for(conn.recv(), 10)
    assert should_retry(end.value)
    assert conn.last_error.code == "session_expired"
    assert "maximum duration of 1 seconds" in conn.last_error.error.message
    assert sim.stats.expired == 1


async def test_bad_key_is_a_configuration_error_without_retry(simulator_factory, caplog):
    sim = await simulator_factory(api_keys=frozenset({"sk-the-right-key"}))
    with pytest.raises(AuthenticationError) as err:
        await open_conn(sim, api_key="sk-the-wrong-key-9876")
    assert not should_retry(err.value)
    assert "invalid_api_key" in str(err.value) and "OPENAI_API_KEY" in str(err.value)
    assert "9876" not in str(err.value) and "9876" not in caplog.text
    assert sim.stats.connections == 1
    with pytest.raises(AuthenticationError):
        await open_conn(sim, api_key="")


async def test_beta_client_against_ga_server_is_told_to_switch_dialect(simulator):
    with pytest.raises(RejectedSetupError) as err:
        await open_conn(simulator, dialect=Dialect.BETA)
    assert err.value.code == "beta_api_shape_disabled" and 'dialect = "ga"' in str(err.value)
    assert not should_retry(err.value)


async def test_unknown_or_missing_model_is_rejected(simulator):
    with pytest.raises(RejectedSetupError, match="invalid_model"):
        await open_conn(simulator, model="gpt-nope")


async def test_beta_client_against_beta_server_works(simulator_factory):
    sim = await simulator_factory(dialect=Dialect.BETA)
    conn = await open_conn(sim, dialect=Dialect.BETA)
    await configure(conn, instructions="Beta era.")
    await conn.send(ev.ItemCreate(item=Item.user_text("hi")))
    await conn.send(ev.ResponseCreate())
    got = await collect(conn)
    assert any(isinstance(e, ev.AudioDelta) for e in got)
    assert got[-1].response.status == "completed"


async def test_network_drop_is_connection_lost(simulator):
    conn = await open_conn(simulator)
    await simulator.drop_all()
    with pytest.raises(ConnectionLost) as err:
        await asyncio.wait_for(conn.recv(), 10)
    assert should_retry(err.value)


async def test_dead_link_is_noticed_by_ping_timeout(simulator):
    conn = await RealtimeConnection.open(Endpoint(url=simulator.url, model="gpt-realtime", api_key=KEY),
                                         ping_interval_s=0.2, ping_timeout_s=0.5)
    for ws in simulator._connections:
        ws.transport.pause_reading()  # the server stops answering pings: a link that looks alive
    with pytest.raises(ConnectionLost):
        await asyncio.wait_for(conn.recv(), 30)


async def test_a_commit_while_the_vad_hears_speech_ends_that_turn(simulator, speech_24k):
    """Noise above the VAD's threshold after the words keeps it in speech; the client commits
    (pivoice does, 1.5 s after its own VAD ended the turn): the turn is committed under the item
    its speech_started named, and the VAD starts afresh (no second commit when the noise stops)."""
    conn = await open_conn(simulator)
    await configure(conn, turn_detection=TurnDetection(silence_duration_ms=500, create_response=False))
    noise = (np.random.default_rng(3).standard_normal(24 * 1500) * 32768 * 10 ** (-38 / 20)).astype("<i2").tobytes()
    audio = bytes(48 * 400) + speech_24k + noise
    for i in range(0, len(audio), 960):
        await conn.send(ev.InputAudioAppend.from_pcm(audio[i:i + 960]))
    await conn.send(ev.InputAudioCommit())
    got = await collect(conn, ev.InputAudioCommitted)
    started = next(e for e in got if isinstance(e, ev.SpeechStarted))
    assert not any(isinstance(e, ev.SpeechStopped) for e in got)
    assert got[-1].item_id == started.item_id
    for i in range(0, 48 * 1000, 960):                     # the room goes quiet
        await conn.send(ev.InputAudioAppend.from_pcm(bytes(960)))
    await conn.send(ev.ItemCreate(item=Item.user_text("and now?")))
    later = []
    while True:                                            # up to the text item: all audio is in
        event = await asyncio.wait_for(conn.recv(), 30)
        later.append(event)
        if isinstance(event, ev.ConversationItemAdded) and event.item.id != started.item_id:
            break
    assert not [e for e in later if isinstance(e, (ev.SpeechStopped, ev.InputAudioCommitted))]
    await conn.close()
