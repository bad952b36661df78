"""A reasoning model (gpt-realtime-2) on the whole device: spoken preambles, parallel tool
calls and the final answer, played in order; a barge-in during the preamble; a rotation with
preambles in the history."""

from __future__ import annotations

from device.state import DeviceState

MODEL = {"model": "gpt-realtime-2", "reasoning_effort": "low"}


def items_started(device) -> list[str]:
    return [e.data["item_id"] for e in device.of("playback_started")]


async def test_preamble_parallel_calls_and_answer_play_in_order(device_factory):
    device = await device_factory(realtime=MODEL)
    app = device.app
    await device.wait_state(DeviceState.IDLE)
    session = device.sim.stats.sessions[-1]
    assert session.session.get("reasoning") == {"effort": "low"}      # sent to a model that takes it
    app.controls.say("What time is it and set the volume to 30")
    first = await device.next_reply(0)
    assert sorted(first.data["tools"]) == ["get_time", "set_volume"]  # parallel calls, one response
    assert first.data["phases"] == ["commentary"] and first.data["preamble"]
    answer = await device.spoken_reply(1)
    assert answer.data["phases"] == ["final_answer"] and answer.data["text"]
    # both tools ran, each answered with its own output, then one response.create
    outcomes = {e.data["name"]: e.data["outcome"] for e in device.of("tool_result")}
    assert outcomes == {"get_time": "ok", "set_volume": "ok"} and app.status()["volume"] == 30
    assert len([e for e in session.items if e.get("type") == "function_call_output"]) == 2
    # the speaker got the preamble, then the answer; each started once, nothing lost
    preamble_id = next(e.data["item_id"] for e in device.of("said") if e.data["phase"] == "commentary")
    answer_id = next(e.data["item_id"] for e in device.of("said") if e.data["phase"] == "final_answer")
    assert items_started(device) == [preamble_id, answer_id]
    received = app.conversation.received_ms
    assert received[preamble_id] > 0 and received[answer_id] > 0
    assert device.of("said", item_id=preamble_id)[0].data["text"] == first.data["preamble"]


async def test_a_tap_during_the_preamble_truncates_the_preamble_at_what_was_played(device_factory):
    device = await device_factory(realtime=MODEL)
    app = device.app
    await device.wait_state(DeviceState.IDLE)
    app.controls.say("What time is it?")
    await device.wait_for(lambda: device.of("playback_started"), "the preamble to start playing")
    preamble = device.of("playback_started")[0].data["item_id"]
    await device.wait_for(lambda: app.pipeline.playback.stats.played_bytes > 24000 * 2 * 0.2, "200 ms played")
    app.controls.interrupt()
    barge = (await device.wait_for(lambda: device.of("barge_in"), "the barge-in"))[0]
    assert barge.data["item_id"] == preamble and barge.data["cause"] == "button"
    played = app.pipeline.last_barge_in["played_ms"][preamble]
    assert barge.data["audio_end_ms"] == played < app.conversation.received_ms[preamble]
    session = device.sim.stats.sessions[-1]
    await device.wait_for(lambda: len(session.audio_of.get(preamble, b"")) == played * 48, "the server's truncation")
    await device.wait_state(DeviceState.IDLE)
    # Whether the response had ended with its call before the tap or not, nothing more is said:
    # a call that ran got its output, but no answer was asked for.
    replies = device.count("reply")
    await device.wait_for(lambda: not app.conversation._tools, "the tools to settle")
    assert items_started(device) == [preamble]
    # an answer asked for before the tap is cancelled on arrival, never played
    assert all(e.data["status"] == "cancelled" for e in device.of("reply")[replies:])


async def test_a_rotation_carries_answers_not_preambles(device_factory):
    device = await device_factory(realtime=MODEL, sim_options={"session_limit_s": 12, "quirks": False})
    app = device.app
    await device.wait_state(DeviceState.IDLE)
    app.controls.say("What time is it?")
    await device.spoken_reply(1)
    await device.wait_for(lambda: app.manager.stats.rotations >= 1, "a rotation")
    carried = [i for i in device.sim.stats.sessions[1].items if i.get("role") == "assistant"]
    texts = [" ".join(p.get("text") or "" for p in i.get("content") or ()) for i in carried]
    preamble = next(e.data["text"] for e in device.of("said") if e.data["phase"] == "commentary")
    assert texts and all(preamble not in t for t in texts)
    assert [t.role for t in app.history.turns].count("assistant") == 1
