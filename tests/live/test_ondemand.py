"""Connect on demand: the idle countdown (time as an input) and the conversation carried into
the next session's ``input``, then over loopback: talk, close, reopen with the history."""

from __future__ import annotations

import pytest

from device.live import events as ev
from device.live import models as m
from device.live.ondemand import ConversationMemory, IdleTimer
from device.live.transcripts import TranscriptGrouper, Turn


def test_idle_timer_counts_from_the_last_activity_and_waits_for_holds():
    timer = IdleTimer(30)
    assert timer.deadline() is None and not timer.due(1e9)
    timer.start(100.0)
    assert timer.deadline() == 130.0 and not timer.due(129.9) and timer.due(130.0)
    timer.activity(120.0)
    assert timer.deadline() == 150.0
    timer.hold("delegation")
    timer.hold("playback")
    assert timer.deadline() is None and not timer.due(1000.0) and timer.held_by == {"delegation", "playback"}
    timer.release("delegation", 1000.0)
    assert not timer.due(5000.0)  # playback still holds it
    timer.release("playback", 1010.0)
    assert timer.deadline() == 1040.0
    timer.release("playback", 2000.0)  # releasing twice changes nothing
    assert timer.deadline() == 1040.0
    timer.stop()
    assert timer.deadline() is None
    with pytest.raises(ValueError):
        IdleTimer(0)


def test_memory_renders_the_newest_turns_within_the_limits():
    memory = ConversationMemory(max_turns=500)
    turns = [Turn("user" if n % 2 == 0 else "assistant", f"turn {n}", n * 1000, n * 1000 + 500) for n in range(300)]
    turns.append(Turn("user", "mm-hm", 400_000, 400_300, backchannel=True))
    memory.add(turns)
    assert len(memory) == 300
    history = memory.history()
    assert len(history) == m.MAX_INPUT_MESSAGES and history[-1].plain == "turn 299"
    assert [h.plain for h in memory.history(max_messages=2)] == ["turn 298", "turn 299"]
    m.check_history(history)
    memory.forget()
    assert memory.history() == []


async def test_a_conversation_continues_in_the_next_session(speech_24k):
    from device.live.connection import LiveConnection, LiveEndpoint
    from device.simulator.live_server import LiveSimulator
    from device.simulator.live_session import LiveSimOptions

    memory = ConversationMemory()
    async with LiveSimulator(LiveSimOptions(seed=4)) as sim:
        endpoint = LiveEndpoint(url=sim.url, api_key="sk-t")
        first = await LiveConnection.open(endpoint, m.SessionConfig.build())
        audio = speech_24k + bytes(48 * 4000)
        for i in range(0, len(audio), 960):
            await first.send(ev.InputAudioAppend.from_audio(audio[i:i + 960]))
        await first.send(ev.SessionClose())  # the idle close
        grouper = TranscriptGrouper()
        async for event in first:
            if isinstance(event, (ev.InputTranscriptDelta, ev.OutputTranscriptDelta)):
                role = "user" if isinstance(event, ev.InputTranscriptDelta) else "assistant"
                memory.add(grouper.add(role, event.delta, event.start_ms, event.end_ms))
        memory.add(grouper.flush())  # no word of the person is lost at the close
        history = memory.history()
        assert [(h.role, h.plain) for h in history] == [
            ("user", "go forward ten meters"), ("assistant", "You said: go forward ten meters.")]

        second = await LiveConnection.open(endpoint, m.SessionConfig.build(history=history))
        assert second.session.id != first.session.id
        assert second.session.input == history
        await second.close()
