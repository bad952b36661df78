"""The device-side Live helpers that need no socket: delegated calls to tool results, and
transcript fragments to turns and carry-over history. Time is the session timeline, an input."""

from __future__ import annotations

import json

import pytest

from device.live import events as ev
from device.live import models as m
from device.live.delegation import DelegationTracker, ToolCall
from device.live.transcripts import GroupingRules, TranscriptGrouper, to_history


def created(task_id="item_1"):
    return ev.DelegationCreated(offset_ms=100, delegation=m.DelegationInfo(id=task_id, target="responses",
                                                                           response_id="resp_1"))


def nested(event, task_id="item_1"):
    return ev.ResponseEvent(delegation_id=task_id, event=event)


def call_done(call_id, name="set_volume", arguments='{"level": 40}', task_id="item_1"):
    return nested({"type": "response.output_item.done", "output_index": 0, "item": {
        "type": "function_call", "call_id": call_id, "name": name, "arguments": arguments}}, task_id)


def test_a_delegated_call_is_run_once_and_answered_with_output_then_create():
    tracker = DelegationTracker()
    assert tracker.on_event(created()) == [] and tracker.running
    assert tracker.on_event(nested({"type": "response.created", "response": {"id": "resp_1"}})) == []
    calls = tracker.on_event(call_done("call_1"))
    assert calls == [ToolCall("item_1", "call_1", "set_volume", '{"level": 40}')]
    assert tracker.on_event(call_done("call_1")) == []  # a repeated event does not run the tool twice
    sent = tracker.result(calls[0], json.dumps({"ok": True}))
    assert [e.type for e in sent] == ["response.item.create", "response.create"]
    assert sent[0].item == {"type": "function_call_output", "call_id": "call_1", "output": '{"ok": true}'}
    assert tracker.running  # until the backend response completes
    tracker.on_event(nested({"type": "response.completed", "response": {"id": "resp_1"}}))
    assert not tracker.running and tracker.completed == 1


def test_parallel_calls_get_one_response_create_after_the_last_output():
    tracker = DelegationTracker()
    tracker.on_event(created())
    first = tracker.on_event(call_done("call_1"))[0]
    second = tracker.on_event(call_done("call_2", name="get_time", arguments="{}"))[0]
    assert [c.call_id for c in tracker.waiting_calls] == ["call_1", "call_2"]
    assert [e.type for e in tracker.result(second, "12:00")] == ["response.item.create"]
    assert [e.type for e in tracker.result(first, "ok")] == ["response.item.create", "response.create"]
    assert tracker.result(first, "again") == []  # answered already: nothing is sent twice


def test_a_closed_session_forgets_its_delegations():
    tracker = DelegationTracker()
    tracker.on_event(created())
    call = tracker.on_event(call_done("call_1"))[0]
    tracker.on_event(ev.SessionClosed(reason="expired"))
    assert not tracker.running and tracker.result(call, "late") == []


def test_fragments_group_into_turns_by_role_and_silence():
    grouper = TranscriptGrouper()
    assert grouper.add("user", "What's the", 600, 800) == []
    assert grouper.add("user", " weather", 800, 1100) == []
    assert grouper.add("assistant", "It is", 1500, 1800) == []
    done = grouper.add("assistant", " sunny.", 1800, 2200)
    assert done == []  # the person's turn is not over until min_turn_separation_ms of silence...
    done = grouper.flush_until(1600)
    assert [(t.role, t.text) for t in done] == [("user", "What's the weather")]
    assert grouper.flush_until(4000) == []  # ...and the model's after assistant_silence_ms
    done = grouper.flush_until(4200)
    assert [(t.role, t.text, t.start_ms, t.end_ms) for t in done] == [("assistant", "It is sunny.", 1500, 2200)]


def test_talking_over_the_model_ends_its_turn_as_interrupted():
    grouper = TranscriptGrouper()
    grouper.add("assistant", "The longest river in", 0, 1200)
    assert grouper.add("user", "No wait", 1300, 1900) == []  # not yet longer than a backchannel
    done = grouper.add("user", " tell me about lakes", 1900, 2600)
    assert [(t.role, t.text, t.interrupted) for t in done] == [("assistant", "The longest river in", True)]
    done = grouper.flush()
    assert [(t.role, t.text, t.backchannel) for t in done] == [("user", "No wait tell me about lakes", False)]


def test_a_short_isolated_murmur_is_a_backchannel_left_out_of_history():
    grouper = TranscriptGrouper(GroupingRules())
    grouper.add("user", "Tell me a story", 0, 1500)
    turns = grouper.flush_until(2100)
    grouper.add("assistant", "Once upon a time", 2200, 4000)
    grouper.add("user", "mm-hm", 4500, 4800)
    turns += grouper.flush_until(5400)
    assert turns[-1].backchannel and turns[-1].text == "mm-hm"
    grouper.add("assistant", " there was a Pi.", 4900, 6000)
    turns += grouper.flush()
    assert [t.text for t in turns if t.role == "assistant"] == ["Once upon a time there was a Pi."]
    history = to_history(turns)
    assert [(h.role, h.plain) for h in history] == [
        ("user", "Tell me a story"), ("assistant", "Once upon a time there was a Pi.")]
    m.check_history(history)


def test_roles_are_checked():
    with pytest.raises(ValueError):
        TranscriptGrouper().add("system", "x", 0, 1)


async def test_a_talked_over_exchange_from_the_simulator_groups_as_it_happened(speech_24k):
    from device.live.connection import LiveConnection, LiveEndpoint
    from device.simulator.live_server import LiveSimulator
    from device.simulator.live_session import LiveSimOptions

    async with LiveSimulator(LiveSimOptions(speedup=1.0, seed=3)) as sim:
        conn = await LiveConnection.open(LiveEndpoint(url=sim.url, api_key="sk-t"), m.SessionConfig.build())
        audio = speech_24k + bytes(48 * 600) + speech_24k + bytes(48 * 5000)
        for i in range(0, len(audio), 960):
            await conn.send(ev.InputAudioAppend.from_audio(audio[i:i + 960]))
        await conn.send(ev.SessionClose())
        grouper, turns = TranscriptGrouper(), []
        async for event in conn:
            if isinstance(event, (ev.InputTranscriptDelta, ev.OutputTranscriptDelta)):
                role = "user" if isinstance(event, ev.InputTranscriptDelta) else "assistant"
                turns += grouper.add(role, event.delta, event.start_ms, event.end_ms)
        turns += grouper.flush()
    assert [(t.role, t.interrupted) for t in turns] == [
        ("user", False), ("assistant", True), ("user", False), ("assistant", False)]
    assert turns[0].text == turns[2].text == "go forward ten meters"
    assert "You said: go forward ten meters.".startswith(turns[1].text) and turns[1].text
    assert turns[3].text == "You said: go forward ten meters."
