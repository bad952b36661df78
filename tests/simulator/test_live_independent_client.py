"""An independent GPT-Live client, written from the protocol reference with plain websockets and
json (none of pivoice's Live protocol code), checks that the Live simulator answers correctly:
the session.start handshake, audio in -> transcripts and audio out, a reply stopping when talked
over, mute, a delegated function call round trip, usage, expiry and refused keys and models.

The simulator's clock is the audio it is sent, so every exchange below is exact: each test
decides how much audio (speech or silence) goes in, and the replies follow from that alone.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import time

import numpy as np
import pytest
import soxr
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from device.simulator.live_server import LiveSimulator
from device.simulator.live_session import LiveSimOptions

CHUNK_BYTES = 960  # 20 ms at 24 kHz PCM16, as the SDK example sends
SPEECH_REPLY = "You said: go forward ten meters."


@pytest.fixture
async def live_factory():
    started: list[LiveSimulator] = []

    async def start(**options) -> LiveSimulator:
        options.setdefault("seed", 1)
        sim = await LiveSimulator(LiveSimOptions(**options)).start()
        started.append(sim)
        return sim

    yield start
    for sim in started:
        await sim.stop()


def url(sim) -> str:
    return f"ws://127.0.0.1:{sim.port}/v1/live/sessions"


def key(value: str = "sk-independent") -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


class Client:
    """A reader task collecting every server message; helpers that send audio from the reference."""

    def __init__(self, ws) -> None:
        self.ws = ws
        self.events: list[dict] = []
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for message in self.ws:
                self.events.append(json.loads(message))

    async def send(self, **event) -> None:
        await self.ws.send(json.dumps(event))

    async def audio(self, pcm: bytes) -> None:
        for i in range(0, len(pcm), CHUNK_BYTES):
            chunk = base64.b64encode(pcm[i:i + CHUNK_BYTES]).decode()
            await self.send(type="session.input_audio.append", audio=chunk)

    async def silence_until(self, done, *, max_ms: int = 60_000) -> None:
        """Keep streaming silence (the model needs it to finish) until ``done(events)``."""
        for n in range(max_ms // 100):
            if n % 10 == 0:
                await self.barrier()
            if done(self.events):
                return
            await self.audio(bytes(4800))
        raise AssertionError(f"condition not met after {max_ms} ms of audio; got {self.types()}")

    async def barrier(self) -> None:
        """Wait until the server has handled everything sent so far: an (idempotent) unmute is
        acknowledged in order, after the events that the earlier audio caused."""
        self._syncs = getattr(self, "_syncs", 0) + 1
        sync_id = f"evt_sync_{self._syncs}"
        await self.send(type="session.input_audio.unmute", event_id=sync_id)
        for _ in range(6000):
            if any(e.get("client_event_id") == sync_id for e in self.events):
                return
            await asyncio.sleep(0.005)
        raise AssertionError(f"the server never acknowledged {sync_id}")

    async def wait_for(self, kind: str, *, after: int = 0) -> dict:
        for _ in range(6000):
            found = [e for e in self.events[after:] if e["type"] == kind]
            if found:
                return found[0]
            if self._reader.done():
                break
            await asyncio.sleep(0.005)
        raise AssertionError(f"no {kind}; got {self.types()}")

    def types(self) -> list[str]:
        return [e["type"] for e in self.events if e["type"] != "session.output_audio.delta"]

    def of(self, kind: str) -> list[dict]:
        return [e for e in self.events if e["type"] == kind]

    def said(self, kind: str = "session.output_transcript.delta") -> str:
        return "".join(e["delta"] for e in self.of(kind))


async def start(ws, **session) -> tuple[Client, dict]:
    session.setdefault("model", "gpt-live-1")
    await ws.send(json.dumps({"type": "session.start", "event_id": "evt_start", "session": session}))
    # No hello: the first thing the server ever says is the answer to session.start.
    first = json.loads(await asyncio.wait_for(ws.recv(), 30))
    return Client(ws), first


async def test_handshake_and_a_spoken_exchange(live_factory, speech_24k):
    sim = await live_factory()
    async with connect(url(sim), additional_headers=key()) as ws:
        client, started = await start(ws, instructions="Be brief.", audio={
            "format": {"type": "audio/pcm", "rate": 24000}, "output": {"voice": "cedar"}})
        assert started["type"] == "session.started" and started["event_id"]
        session = started["session"]
        assert session["id"].startswith("sess_") and session["status"] == "active"
        assert session["model"] == "gpt-live-1" and session["audio"]["output"]["voice"] == "cedar"
        assert session["delegation"] == {"type": "client"} and session["store"] is False
        assert 3500 < session["expires_at"] - time.time() <= 3600

        await client.audio(speech_24k)
        await client.silence_until(lambda ev: client.said() == SPEECH_REPLY)
        assert client.said("session.input_transcript.delta") == "go forward ten meters"
        heard = client.of("session.input_transcript.delta")
        assert all(e["event_id"] and e["start_ms"] <= e["end_ms"] for e in heard)
        assert heard[0]["start_ms"] < heard[-1]["end_ms"] <= len(speech_24k) // 48 + 1000
        audio = client.of("session.output_audio.delta")
        pcm = b"".join(base64.b64decode(e["delta"]) for e in audio)
        assert len(pcm) % 2 == 0 and len(pcm) > 48 * 1500
        assert all("event_id" not in e for e in audio)
        # Live has no turn, done or commit events of any kind (reference section 3b).
        assert not {t for t in client.types() if t.endswith(".done") or "committed" in t or "speech_" in t}
        # appends are never acknowledged
        assert not [t for t in client.types() if "append" in t]

        await client.send(type="session.close", event_id="evt_bye")
        closed = await client.wait_for("session.closed")
        assert closed["reason"] == "close_requested" and closed["usage"]["seconds"] >= 0
        assert closed["session"]["status"] == "active"
        await ws.wait_closed()
        assert ws.close_code == 1000


async def test_the_model_stops_when_talked_over(live_factory, speech_24k):
    sim = await live_factory(speedup=1.0)
    async with connect(url(sim), additional_headers=key()) as ws:
        client, _ = await start(ws)
        await client.audio(speech_24k + bytes(48 * 600))  # the reply starts in this silence...
        await client.audio(speech_24k)                    # ...and the person talks over it
        await client.silence_until(lambda ev: client.said().endswith(SPEECH_REPLY))
        heard = client.of("session.input_transcript.delta")
        assert "".join(e["delta"] for e in heard) == "go forward ten meters" * 2
        second_start = heard[4]["start_ms"]
        said = client.of("session.output_transcript.delta")
        before = "".join(e["delta"] for e in said if e["start_ms"] < second_start)
        after = "".join(e["delta"] for e in said if e["start_ms"] >= second_start)
        # The first reply was cut off part way, by the model itself; the second one is whole.
        assert before and SPEECH_REPLY.startswith(before) and before != SPEECH_REPLY
        assert after == SPEECH_REPLY
        assert sim.stats.sessions[0].counts["talked_over"] == 1


async def test_mute_keeps_the_person_from_the_model(live_factory, speech_24k):
    sim = await live_factory()
    async with connect(url(sim), additional_headers=key()) as ws:
        client, _ = await start(ws)
        await client.send(type="session.input_audio.mute", event_id="evt_mute")
        muted = await client.wait_for("session.input_audio.muted")
        await client.audio(speech_24k + bytes(48 * 1000))
        await client.send(type="session.input_audio.unmute")
        unmuted = await client.wait_for("session.input_audio.unmuted")
        assert muted["event_id"] and unmuted["event_id"]
        # everything sent while muted has been processed by now: nothing was heard or said
        assert not client.of("session.input_transcript.delta") and not client.of("session.output_audio.delta")
        await client.audio(speech_24k)
        await client.silence_until(lambda ev: client.said() == SPEECH_REPLY)
        assert client.said("session.input_transcript.delta") == "go forward ten meters"


async def test_appended_commentary_is_spoken_and_appends_are_acknowledged(live_factory):
    sim = await live_factory()
    async with connect(url(sim), additional_headers=key()) as ws:
        client, _ = await start(ws)
        await client.send(type="session.instructions.append", content="Call the user Ada.", delegation_id=None,
                          event_id="evt_i")
        acked = await client.wait_for("session.instructions.appended")
        assert acked["client_event_id"] == "evt_i" and acked["start_ms"] == acked["end_ms"] == 0
        await client.send(type="session.commentary.append", content="Dinner is ready.", delegation_id=None)
        await client.wait_for("session.commentary.appended")
        await client.silence_until(lambda ev: client.said() == "Dinner is ready.")
        mark = len(client.events)
        await client.send(type="session.commentary.append", content="x", delegation_id="item_unknown")
        assert (await client.wait_for("error", after=mark))["error"]["param"] == "delegation_id"


async def test_delegated_function_call_round_trip(live_factory, speech_24k):
    sim = await live_factory()
    tool = {"type": "function", "name": "move_forward", "description": "Drive the robot forward",
            "parameters": {"type": "object", "properties": {"meters": {"type": "integer"}}}}
    async with connect(url(sim), additional_headers=key()) as ws:
        client, started = await start(ws, delegation={"type": "responses", "responses": {
            "model": "gpt-5.1", "tools": [tool]}})
        assert started["session"]["delegation"]["responses"]["tools"][0]["name"] == "move_forward"
        await client.audio(speech_24k)

        def call_done(events):
            return any(e["type"] == "response.event" and e["event"]["type"] == "response.output_item.done"
                       for e in events)
        await client.silence_until(call_done)
        created = client.of("session.delegation.created")[0]
        task = created["delegation"]
        assert task["type"] == "delegation" and task["target"] == "responses" and task["id"]
        assert "offset_ms" in created
        nested = [e for e in client.of("response.event") if e["delegation_id"] == task["id"]]
        kinds = [e["event"]["type"] for e in nested]
        assert kinds[0] == "response.created" and kinds[-1] == "response.output_item.done"
        call = nested[-1]["event"]["item"]
        assert call["type"] == "function_call" and call["name"] == "move_forward" and call["call_id"]
        assert json.loads(call["arguments"]) == {}

        # the backend waits: nothing completes until the output and response.create arrive
        await client.silence_until(lambda ev: "One moment." in client.said())
        assert not [e for e in client.of("response.event") if e["event"]["type"] == "response.completed"]
        await client.send(type="response.create")
        refused = await client.wait_for("error")
        assert refused["error"]["code"] == "missing_tool_output"

        mark = len(client.events)
        await client.send(type="response.item.create", event_id="evt_out", item={
            "type": "function_call_output", "call_id": call["call_id"], "output": json.dumps({"moved": 10})})
        await client.send(type="response.create")
        completed = None
        for _ in range(200):
            done = [e for e in client.events[mark:] if e["type"] == "response.event"
                    and e["event"]["type"] == "response.completed"]
            if done:
                completed = done[0]["event"]["response"]
                break
            await asyncio.sleep(0.01)
        assert completed and completed["status"] == "completed" and completed["usage"]["total_tokens"] > 0
        assert completed["id"] == task["response_id"]
        assert not [e for e in client.events[mark:] if e["type"] == "error"]
        await client.silence_until(lambda ev: client.said().endswith("Done. The result is moved 10."))


async def test_strict_session_start_and_errors(live_factory):
    sim = await live_factory()
    async with connect(url(sim), additional_headers=key()) as ws:
        await ws.send(json.dumps({"type": "session.input_audio.append", "audio": "AAAA"}))
        assert json.loads(await ws.recv())["error"]["code"] == "session_not_started"
        await ws.send(json.dumps({"type": "session.start", "event_id": "evt_td", "session": {
            "model": "gpt-live-1", "turn_detection": {"type": "server_vad"}}}))
        err = json.loads(await ws.recv())
        assert err["type"] == "error" and err["error"]["code"] == "unknown_parameter"
        assert err["client_event_id"] == err["error"]["client_event_id"] == "evt_td"
        assert err["error"]["param"] == "session.turn_detection"
        await ws.send(json.dumps({"type": "session.start", "session": {"instructions": "x"}}))
        assert json.loads(await ws.recv())["error"]["param"] == "session.model"
        history = [{"role": "user", "content": [{"type": "input_text", "text": "hi"}]}] * 129
        await ws.send(json.dumps({"type": "session.start", "session": {"model": "gpt-live-1", "input": history}}))
        assert json.loads(await ws.recv())["error"]["param"] == "session.input"

        client, started = await start(ws, input=history[:2])
        assert started["type"] == "session.started"
        await client.send(type="session.input_audio.append", audio=base64.b64encode(b"\x01\x02\x03").decode(),
                          event_id="evt_odd")
        err = await client.wait_for("error")
        assert err["error"]["code"] == "invalid_audio" and err["error"]["param"] == "audio"
        assert err["error"]["client_event_id"] == "evt_odd"
        for bad in ("not json", json.dumps({"type": "session.fly"}), json.dumps({"session": {}})):
            mark = len(client.events)
            await ws.send(bad)
            assert (await client.wait_for("error", after=mark))["error"]["code"] in (
                "invalid_json", "invalid_value", "invalid_event")
        mark = len(client.events)
        await client.send(type="session.update", session={"delegation": {"type": "responses", "responses": {}}})
        assert (await client.wait_for("error", after=mark))["error"]["param"] == "session.delegation.type"
        mark = len(client.events)
        await client.send(type="session.thinking.append", content="The user is Ada.")
        assert (await client.wait_for("error", after=mark))["error"]["param"] == "delegation_id"
        await client.send(type="session.thinking.append", content="The user is Ada.", delegation_id=None)
        appended = await client.wait_for("session.thinking.appended")
        assert appended["start_ms"] <= appended["end_ms"]


async def test_usage_updates_and_expiry(live_factory):
    sim = await live_factory(session_limit_s=1.0, usage_interval_s=0.2)
    async with connect(url(sim), additional_headers=key()) as ws:
        client, started = await start(ws)
        assert 0 < started["session"]["expires_at"] - time.time() <= 1.0
        closed = await client.wait_for("session.closed")
        assert closed["reason"] == "expired" and closed["usage"]["seconds"] > 0
        usage = client.of("session.usage.updated")
        assert usage, "usage is reported while the session is open"
        seconds = [u["usage"]["seconds"] for u in usage]
        assert seconds == sorted(seconds) and seconds[-1] <= closed["usage"]["seconds"]
        assert all(0 <= u["context_window"]["usage_ratio"] <= 1 for u in usage)
        await ws.wait_closed()
        assert ws.close_code == 1000


async def test_bad_key_is_refused_at_the_upgrade(live_factory):
    sim = await live_factory(api_keys=frozenset({"sk-good"}))
    with pytest.raises(InvalidStatus) as refused:
        async with connect(url(sim), additional_headers=key("sk-bad")):
            pass
    assert refused.value.response.status_code == 401
    with pytest.raises(InvalidStatus) as missing:
        async with connect(url(sim)):
            pass
    assert missing.value.response.status_code == 401
    with pytest.raises(InvalidStatus) as model_in_url:
        async with connect(url(sim) + "?model=gpt-live-1", additional_headers=key("sk-good")):
            pass
    assert model_in_url.value.response.status_code == 400


async def test_bad_key_in_band_and_refused_model_close_final(live_factory):
    sim = await live_factory(api_keys=frozenset({"sk-good"}), bad_key="in_band")
    async with connect(url(sim), additional_headers=key("sk-bad")) as ws:
        err = json.loads(await ws.recv())
        assert err["error"]["code"] == "invalid_api_key" and err["error"]["type"] == "authentication_error"
        assert "sk-bad" not in err["error"]["message"]
        await ws.wait_closed()
        assert ws.close_code == 1008
    async with connect(url(sim), additional_headers=key("sk-good")) as ws:
        await ws.send(json.dumps({"type": "session.start", "session": {"model": "gpt-realtime"}}))
        err = json.loads(await ws.recv())
        assert err["type"] == "error" and err["error"]["code"] == "model_not_found"
        assert err["error"]["param"] == "session.model"
        await ws.wait_closed()
        assert ws.close_code == 1008


async def test_16_khz_pcm_both_ways(live_factory, speech_24k):
    sim = await live_factory()
    samples = np.frombuffer(speech_24k, dtype="<i2").astype(np.float32)
    speech_16k = np.clip(soxr.resample(samples, 24000, 16000), -32768, 32767).astype("<i2").tobytes()
    async with connect(url(sim), additional_headers=key()) as ws:
        client, started = await start(ws, audio={"format": {"type": "audio/pcm", "rate": 16000}})
        assert started["session"]["audio"]["format"] == {"type": "audio/pcm", "rate": 16000}
        await client.audio(speech_16k)
        await client.silence_until(lambda ev: client.said() == SPEECH_REPLY)
        assert client.said("session.input_transcript.delta") == "go forward ten meters"
        chunks = [base64.b64decode(e["delta"]) for e in client.of("session.output_audio.delta")]
        # 100 ms deltas: 3,200 bytes at 16 kHz (4,800 would be 24 kHz)
        assert len(chunks[0]) == 3200 and all(len(c) % 2 == 0 for c in chunks)
