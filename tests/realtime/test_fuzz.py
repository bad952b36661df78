"""Fuzz: thousands of mutated real server events (the seeds' captures) through the parser,
the event registry, the session reader and a real client connection. Zero crashes: every
frame is either a parsed event whose consumer-facing properties work, or a counted skip.
"""

import base64
import copy
import json
import random
from pathlib import Path

from websockets.asyncio.server import serve

from device.errors import RemoteProtocolError
from device.realtime import events as ev
from device.realtime.connection import Endpoint, RealtimeConnection
from device.realtime.dialect import Dialect, parse_session
from device.realtime.protocol import RealtimeProtocol

ROWS = [json.loads(line) for line in (Path(__file__).parents[1] / "fixtures" / "seed_server_events.jsonl").open()]
ODD_VALUES = [None, True, 0, -1, 1e308, float("nan"), float("inf"), "", "x" * 50, [], [1, "a"], {}, {"a": {"b": []}}]


def _paths(obj, prefix=()):
    """Every (container, key) inside a JSON value."""
    items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, list) else ()
    for key, value in items:
        yield obj, key
        yield from _paths(value, prefix + (key,))


def mutate(event: dict, rng: random.Random) -> str | bytes:
    event = copy.deepcopy(event)
    spots = list(_paths(event))
    for _ in range(rng.randint(1, 3)):
        container, key = rng.choice(spots)
        op = rng.random()
        if op < 0.25 and isinstance(container, dict):
            container.pop(key, None)
        elif op < 0.6:
            container[key] = copy.deepcopy(rng.choice(ODD_VALUES))
        elif op < 0.75 and isinstance(container.get(key) if isinstance(container, dict) else None, str):
            text = container[key]
            container[key] = text[: rng.randint(0, len(text))] + rng.choice(["", "=", "%", "\u00e9", "\\", "\x00"])
        elif op < 0.85:
            depth = rng.choice([3, 70, 5000, 100_000])
            container[key] = json.loads("[" * min(depth, 60) + "]" * min(depth, 60)) if depth < 64 else "DEEP"
        spots = list(_paths(event)) or [(event, "type")]
    if str(event.get("type", "")).endswith("audio.delta") and rng.random() < 0.5:
        raw = bytes(rng.randrange(256) for _ in range(rng.randint(0, 9)))
        event["delta"] = rng.choice([base64.b64encode(raw).decode(), base64.b64encode(raw).decode()[:-1], "@@"])
    text = json.dumps(event)
    if "\"DEEP\"" in text:
        text = text.replace("\"DEEP\"", "[" * 100_000 + "]" * 100_000, 1)
    roll = rng.random()
    if roll < 0.08:
        text = text[: rng.randint(0, len(text))]
    elif roll < 0.1:
        return text.encode()
    elif roll < 0.12:
        text = "{\"type\":" * rng.choice([10, 100_000]) + text
    return text


def exercise(event: ev.Event) -> None:
    """What the device's consumers read from an event; none of it may raise."""
    event.to_dict()
    if isinstance(event, ev.AudioDelta):
        assert len(event.pcm) % 2 == 0
    if isinstance(event, (ev.ResponseCreated, ev.ResponseDone)):
        _ = event.response.reason, event.response.error, event.response.audio_tokens
        _ = [item.text for item in event.response.output]
    if isinstance(event, (ev.SessionCreated, ev.SessionUpdated)):
        parse_session(event.session, Dialect.GA)
        parse_session(event.session, Dialect.BETA)
    if isinstance(event, ev.ErrorEvent):
        _ = event.code, event.error.message[:10]
    if hasattr(event, "item") and isinstance(event.item, ev.Item):
        _ = event.item.text, event.item.has_audio


def test_thousands_of_mutated_seed_events_never_crash_the_parser():
    rng = random.Random(17)
    outcomes = {"parsed": 0, "skipped": 0}
    protocols = {d: RealtimeProtocol(d) for d in Dialect}
    for _ in range(6):
        for row in ROWS:
            proto = protocols[Dialect(row["dialect"])]
            try:
                event = proto.receive_text(mutate(row["event"], rng))
            except RemoteProtocolError:
                outcomes["skipped"] += 1
                continue
            exercise(event)
            outcomes["parsed"] += 1
    assert sum(outcomes.values()) == 6 * len(ROWS) > 4000
    # the mutations really produce both outcomes, in quantity
    assert outcomes["parsed"] > 500 and outcomes["skipped"] > 500, outcomes
    rejected = sum(p.frames_rejected for p in protocols.values())
    assert rejected == outcomes["skipped"] == sum(sum(p.rejected.values()) for p in protocols.values())


async def test_mutated_frames_through_a_real_connection_keep_it_open():
    rng = random.Random(1717)
    ga_rows = [r for r in ROWS if r["dialect"] == "beta"]
    frames = [mutate(rng.choice(ga_rows)["event"], rng) for _ in range(600)]
    expected = RealtimeProtocol(Dialect.BETA)
    skipped = 0
    for frame in frames:
        try:
            expected.receive_text(frame)
        except RemoteProtocolError:
            skipped += 1
    session = next(r["event"] for r in ga_rows if r["event"]["type"] == "session.created")
    done = {"type": "input_audio_buffer.cleared", "event_id": "last"}

    async def handler(ws):
        for frame in [json.dumps(session), *frames, json.dumps(done)]:
            await ws.send(frame)
        await ws.wait_closed()

    async with serve(handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        conn = await RealtimeConnection.open(Endpoint(url=f"ws://127.0.0.1:{port}", model="m", dialect=Dialect.BETA),
                                             open_timeout_s=5, ping_interval_s=None)
        received = 0
        while True:
            event = await conn.recv()
            exercise(event)
            received += 1
            if event.event_id == "last":
                break
        assert conn.is_open
        await conn.close()
    assert conn.stats.bad_frames_total == skipped > 50
    assert received == len(frames) - skipped + 1
