"""A missing part never stops the rest: without a microphone or a speaker the device still
connects, answers ``say``, says what is missing (the error state, not "offline") and
recovers by itself when the part appears."""

from __future__ import annotations

import pytest

from device.state import DeviceState

from .conftest import clip16k


async def test_the_status_says_why_the_echo_canceller_rests_while_the_microphone_is_missing(device_factory):
    from device.audio import aec
    from device.diag.daemon import render_status

    if not aec.available("webrtc"):
        pytest.skip("livekit (the aec extra) is not installed")
    device = await device_factory(mic_present=False, audio={"echo_cancel": "webrtc"})
    app = device.app
    await device.wait_for(lambda: app.status()["stand_in_frames"] > 0, "the silence standing in")
    status = app.status()
    assert status["echo_canceller"]["kind"] == "webrtc" and status["echo_canceller"]["standing_in"]
    assert "webrtc, paused: the microphone is missing" in render_status(status)
    device.mic.plug_in()
    await device.wait_for(lambda: app.status()["mic_frames"] > 0, "frames of the real microphone")
    status = app.status()
    assert not status["echo_canceller"]["standing_in"]
    assert "webrtc: " in render_status(status) and "paused" not in render_status(status)


async def test_without_a_microphone_the_device_connects_answers_and_recovers(device_factory):
    device = await device_factory(mic_present=False)
    app = device.app
    await device.wait_for(lambda: device.count("session") >= 1, "a session despite the missing microphone")
    await device.wait_state(DeviceState.ERROR)
    status = app.status()
    assert status["link"] == "up"
    assert "microphone" in status["audio_problem"] and "pivoice devices" in status["audio_problem"]
    assert status["microphone"].startswith("missing")
    assert "audio: microphone" in app.status_line()
    # the silence standing in is counted apart: no microphone frames while it is missing
    await device.wait_for(lambda: app.status()["stand_in_frames"] > 0, "the silence standing in")
    assert app.status()["mic_frames"] == 0
    error = device.of("state", state="error")[-1]
    assert "microphone" in error.data["problem"]

    # `say` still works: the reply is spoken through the speaker, and the state stays honest.
    assert app.controls.say("What time is it?") is None
    reply = await device.spoken_reply(0)
    assert reply.data["tools"] == ["get_time"] or reply.data["audio"]
    await device.wait_for(lambda: device.speaker.played_pcm().strip(b"\0"), "the reply on the speaker")
    await device.wait_state(DeviceState.ERROR)

    # The microphone is plugged in: the device notices by itself and listens again.
    device.mic.plug_in()
    await device.wait_state(DeviceState.IDLE, timeout=30)
    assert app.status()["audio_problem"] is None
    assert device.count("device_ok") == 1
    standing_in = app.status()["stand_in_frames"]
    await device.wait_for(lambda: app.status()["mic_frames"] > 0, "frames of the real microphone")
    assert app.status()["stand_in_frames"] == standing_in
    n = device.count("reply")
    device.mic.say(clip16k("goforward.raw"))
    heard = await device.spoken_reply(n)
    assert "go forward ten meters" in heard.data["text"].lower()


async def test_without_a_speaker_replies_do_not_leave_the_device_speaking(device_factory):
    device = await device_factory(speaker_present=False)
    app = device.app
    await device.wait_for(lambda: device.count("session") >= 1, "a session despite the missing speaker")
    await device.wait_state(DeviceState.ERROR)
    assert "speaker" in app.status()["audio_problem"]

    device.mic.say(clip16k("goforward.raw"))
    reply = await device.next_reply(0)
    assert reply.data["audio"] and "go forward ten meters" in reply.data["text"].lower()
    # The reply "drains" at once without a speaker: nothing is left waiting for a sound card.
    await device.wait_for(lambda: device.count("reply_finished") >= 1, "the reply to finish")
    await device.wait_state(DeviceState.ERROR)
    assert app.manager.idle()
    assert app.pipeline.counters.bytes_dropped_no_speaker > 0

    device.speaker.plug_in()
    await device.wait_state(DeviceState.IDLE, timeout=30)
    n = device.count("reply")
    assert app.controls.say("Hello there") is None
    await device.spoken_reply(n)
    assert device.speaker.played_pcm().strip(b"\0")


async def test_a_speaker_unplugged_in_the_middle_of_a_reply(device_factory):
    device = await device_factory()
    app = device.app
    await device.wait_state(DeviceState.IDLE)
    app.controls.say("Tell me a long story about a robot and a cat, please, with many details.")
    await device.wait_state(DeviceState.SPEAKING)
    device.speaker.unplug()
    await device.wait_state(DeviceState.ERROR, timeout=30)
    await device.wait_for(lambda: app.manager.idle(), "the cut-off reply to be given up")
    device.speaker.plug_in()
    await device.wait_state(DeviceState.IDLE, timeout=30)


@pytest.mark.parametrize("mode", ["server_vad", "local_vad", "push_to_talk", "live"])
async def test_a_microphone_unplugged_in_the_middle_of_a_turn(device_factory, mode):
    """The person is cut off: silence stands in for the microphone (hardware/standin.py), so the
    turn ends as if they had stopped talking (push-to-talk: when they let go) and what was heard
    is answered now, through the speaker that still works. Before, the turn waited for the
    microphone, and whenever it came back (minutes later, maybe) the device answered that stale
    half-question; GPT-Live, paced by the audio it is sent, could not answer at all."""
    live = mode == "live"
    device = await (device_factory(api="live") if live else device_factory(turns={"mode": mode}))
    app = device.app
    await device.wait_state(DeviceState.IDLE)
    pin = device.pins.pin(17)
    if mode == "push_to_talk":
        pin.drive_low()
    clip = clip16k("goforward.raw")
    device.mic.say(clip)
    await device.wait_state(DeviceState.LISTENING)
    await device.wait_for(lambda: device.mic.spoken_bytes >= len(clip) * 2 // 3, "two thirds of the question")
    device.mic.unplug()
    await device.wait_for(lambda: device.count("device_problem"), "the microphone's problem")
    if mode == "push_to_talk":
        pin.drive_high()                 # the person lets go: the turn is committed
    reply = await device.spoken_reply(0)
    assert reply.data["audio"] or live
    assert device.count("device_recovered") == 0             # answered while unplugged
    assert app.pipeline.counters.bytes_sent > 0 or live
    await device.wait_state(DeviceState.ERROR)

    device.mic.plug_in()
    await device.wait_state(DeviceState.IDLE, timeout=30)
    n = device.count("reply")
    if mode == "push_to_talk":
        pin.drive_low()
        await device.wait_state(DeviceState.LISTENING)
    device.mic.say(clip16k("goforward.raw", pad_ms=300))
    await device.mic.wait_said()
    if mode == "push_to_talk":
        pin.drive_high()
    again = await device.spoken_reply(n)
    assert "go forward ten meters" in again.data["text"].lower()
    assert [e.data["text"] for e in device.of("reply")][n:] == [again.data["text"]]   # no stale answer first


async def test_gpt_live_answers_say_without_a_microphone(device_factory):
    """GPT-Live's output is paced by the audio it is sent: the silence standing in for the
    missing microphone lets it answer (before, the reply never came)."""
    device = await device_factory(api="live", mic_present=False)
    app = device.app
    await device.wait_state(DeviceState.ERROR)
    assert app.controls.say("What time is it?") is None
    reply = await device.spoken_reply(0)
    assert reply.data["text"]
    await device.wait_state(DeviceState.ERROR)
    assert app.stand_in.silence is not None and app.stand_in.silence.periods > 0
    device.mic.plug_in()
    await device.wait_state(DeviceState.IDLE, timeout=30)
    assert not app.stand_in.active


async def test_push_to_talk_without_a_microphone_sends_nothing(device_factory):
    """The silence standing in for a missing microphone is not something to talk into: a press
    is refused as before (it used to commit the silence, and the server answered it)."""
    device = await device_factory(turns={"mode": "push_to_talk"}, mic_present=False)
    app = device.app
    await device.wait_state(DeviceState.ERROR)
    await device.wait_for(lambda: app.stand_in.active, "the silence in the microphone's place")
    assert app.controls.talk(True, 500) == "the microphone is not open"
    pin = device.pins.pin(17)
    pin.drive_low()
    await device.wait_for(lambda: device.of("button", gesture="hold_start"), "the hold")
    pin.drive_high()
    await device.wait_for(lambda: device.of("button", gesture="hold_end"), "the release")
    assert app.conversation.stats.appends == 0 and app.pipeline.counters.bytes_sent == 0
    assert device.count("turn") == 0 and device.count("speech_started") == 0
