"""The device's protocol client with a reasoning model (gpt-realtime-2) against the simulator
over loopback: reasoning settings, preambles (``phase``), parallel calls, barge-in on a preamble."""

from __future__ import annotations

import asyncio
import json

from device.realtime import events as ev
from device.realtime.connection import Endpoint, RealtimeConnection
from device.realtime.dialect import Dialect, model_takes_reasoning, render_session
from device.realtime.models import Item
from device.realtime.session import SessionSettings, Tool, TurnDetection

KEY = "sk-test-key-0000"
TOOLS = (Tool(name="get_time", description="The time."),
         Tool(name="set_volume", description="Set the volume.",
              parameters={"type": "object", "properties": {"level": {"type": "integer"}}}))


async def open_conn(sim, model="gpt-realtime-2") -> RealtimeConnection:
    return await RealtimeConnection.open(Endpoint(url=sim.url, model=model, api_key=KEY), ping_interval_s=None)


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
    session = render_session(SessionSettings(**settings), conn.endpoint.dialect, model=conn.endpoint.model)
    await conn.send(ev.SessionUpdate(session=session))
    return (await collect(conn, (ev.SessionUpdated, ev.ErrorEvent)))[-1]


def test_reasoning_is_rendered_only_for_models_that_take_it():
    settings = SessionSettings(reasoning_effort="medium")
    assert render_session(settings, Dialect.GA, model="gpt-realtime-2")["reasoning"] == {"effort": "medium"}
    assert render_session(settings, Dialect.GA, model="gpt-realtime-2.1-mini")["reasoning"] == {"effort": "medium"}
    for model in ("gpt-realtime", "gpt-realtime-2025-08-28", "gpt-realtime-1.5", "gpt-realtime-mini", None):
        assert "reasoning" not in render_session(settings, Dialect.GA, model=model), model
    assert "reasoning" not in render_session(settings, Dialect.BETA, model="gpt-realtime-2")
    assert "reasoning" not in render_session(SessionSettings(), Dialect.GA, model="gpt-realtime-2")
    assert model_takes_reasoning("gpt-realtime-2-2026-05-07") and not model_takes_reasoning("gpt-realtime-mini")


async def test_the_same_settings_work_on_both_kinds_of_model(simulator):
    for model, expected in (("gpt-realtime-2", {"effort": "high"}), ("gpt-realtime-1.5", None)):
        conn = await open_conn(simulator, model)
        updated = await configure(conn, reasoning_effort="high", tools=TOOLS)
        assert isinstance(updated, ev.SessionUpdated), updated
        assert updated.session.get("reasoning") == expected
        await conn.close()


async def test_preamble_and_parallel_calls_parse_into_typed_items(simulator):
    conn = await open_conn(simulator)
    await configure(conn, reasoning_effort="low", tools=TOOLS)
    await conn.send(ev.ItemCreate(item=Item.user_text("What time is it, and set the volume to 30")))
    await conn.send(ev.ResponseCreate())
    got = await collect(conn)
    output = got[-1].response.output
    assert [(o.type, o.phase) for o in output] == [("message", "commentary"), ("function_call", None),
                                                   ("function_call", None)]
    assert output[0].text == "Let me check that." and output[0].has_audio
    added = [e for e in got if isinstance(e, ev.OutputItemAdded)]
    assert [e.item.phase for e in added] == ["commentary", None, None]
    calls = [e for e in got if isinstance(e, ev.FunctionCallArgumentsDone)]
    assert [(c.name, json.loads(c.arguments), c.output_index) for c in calls] == [
        ("get_time", {}, 1), ("set_volume", {"level": 30}, 2)]
    for call in calls:
        await conn.send(ev.ItemCreate(item=Item.function_output(call.call_id, json.dumps({"ok": call.name}))))
    await conn.send(ev.ResponseCreate())
    got = await collect(conn, ev.ResponseDone)
    (answer,) = got[-1].response.output
    assert answer.phase == "final_answer" and answer.text == "Done. The results are ok get_time; ok set_volume."
    await conn.close()


async def test_barge_in_during_the_preamble_truncates_the_preamble(simulator_factory, speech_24k):
    sim = await simulator_factory(speedup=1.0)
    conn = await open_conn(sim)
    await configure(conn, tools=TOOLS, turn_detection=TurnDetection(silence_duration_ms=500))
    await conn.send(ev.ItemCreate(item=Item.user_text("what time is it and set the volume to 30")))
    await conn.send(ev.ResponseCreate())
    first_audio = (await collect(conn, ev.AudioDelta))[-1]
    await conn.send(ev.InputAudioAppend.from_pcm(speech_24k))
    got = await collect(conn)
    done = got[-1].response
    assert done.status == "cancelled" and done.reason == "turn_detected"
    # only the preamble was output; the calls it announced never started
    assert [(o.id, o.phase, o.status) for o in done.output] == [(first_audio.item_id, "commentary", "incomplete")]
    assert not [e for e in got if isinstance(e, ev.FunctionCallArgumentsDone)]
    received_ms = (len(first_audio.pcm) + sum(len(e.pcm) for e in got if isinstance(e, ev.AudioDelta))) // 48
    await conn.send(ev.ItemTruncate(item_id=first_audio.item_id, content_index=0, audio_end_ms=received_ms + 500))
    err = (await collect(conn, ev.ErrorEvent))[-1]
    assert err.code == "invalid_value" and f"Audio content of {received_ms}ms" in err.error.message
    await conn.send(ev.ItemTruncate(item_id=first_audio.item_id, content_index=0, audio_end_ms=60))
    truncated = (await collect(conn, ev.ConversationItemTruncated))[-1]
    assert (truncated.item_id, truncated.audio_end_ms) == (first_audio.item_id, 60)
    await conn.close()
