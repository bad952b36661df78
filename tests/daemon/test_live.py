"""The whole device on GPT-Live (``[realtime] api = "live"``), on simulated hardware, against the
built-in Live simulator over loopback: connect on demand, a spoken conversation, a reply talked
over, mute, a tool through delegation, idle close and reopen with the history, expiry, bad key."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

from device.live.manager import LiveSessionManager
from device.state import DeviceState

from .conftest import clip16k

ROOT = Path(__file__).resolve().parents[2]


def sessions(device) -> list:
    return device.sim.stats.sessions


async def test_no_session_until_spoken_to_then_a_spoken_conversation(device_factory):
    device = await device_factory(api="live", realtime={"idle_close": 30})
    app = device.app
    assert isinstance(app.manager, LiveSessionManager) and str(app.turns.mode) == "continuous"
    await device.wait_state(DeviceState.IDLE)            # standby: ready, but not connected
    assert device.sim.stats.connections == 0 and app.manager.conn is None
    assert app.status()["api"] == "live" and app.status()["link"] == "standby"

    device.mic.say(clip16k("goforward.raw"))
    heard = await device.wait_for(lambda: device.of("heard"), "the person's words")
    assert heard[0].data["text"] == "go forward ten meters"   # the first words came before the session
    reply = await device.wait_for(lambda: device.of("reply"), "the model's reply")
    assert reply[0].data["text"] == "You said: go forward ten meters."
    await device.wait_for(lambda: device.count("reply_finished") and not app.pipeline.speaking, "playback")
    await device.wait_state(DeviceState.IDLE)
    kinds = [e.kind for e in device.events]
    assert kinds.index("reply") < kinds.index("reply_finished")   # `pivoice say` prints it before it stops
    states = device.states()
    assert states.index("listening") < states.index("speaking") < len(states) - 1 and states[-1] == "idle"
    assert device.count("session") == 1 and device.count("connecting", reason="speech") == 1
    # Everything the model sent was played, and only silence or speech went up, all of it.
    played_ms = len(device.speaker.played_pcm().rstrip(b"\0")) // 48
    assert abs(played_ms - app.conversation.stats.bytes_down // 48) <= 20
    sim_session = sessions(device)[0]
    assert sim_session.clock_ms >= 3000 and app.status()["link"] == "up"


async def test_idle_close_then_the_next_session_gets_the_conversation(device_factory):
    device = await device_factory(api="live", realtime={"idle_close": 2}, metrics="127.0.0.1:0")
    app = device.app
    await device.wait_state(DeviceState.IDLE)
    device.mic.say(clip16k("goforward.raw"))
    await device.wait_for(lambda: device.of("reply"), "the reply")
    closed = await device.wait_for(lambda: device.of("standby", reason="idle"), "the idle close")
    first = sessions(device)[0]
    assert first.state == "closed" and app.manager.conn is None and app.status()["link"] == "standby"
    assert closed[0].data["billed_s"] > 0 and app.machine.state is DeviceState.IDLE
    assert device.count("link_down") == 0                   # closing on purpose is not going offline
    from .test_metrics import scrape

    metrics = await scrape(app)
    assert metrics.value("pivoice_link", pivoice_link="standby") == 1
    assert metrics.value("pivoice_live_idle_closes_total") == 1 and metrics.value("pivoice_live_billed_seconds") > 0

    assert app.controls.say("What did I say before?") is None   # opens a session on demand
    reply = await device.wait_for(lambda: device.of("reply")[1:], "the answer in the second session")
    assert reply[0].data["text"] == "Earlier you said: go forward ten meters."
    second = sessions(device)[1]
    assert [(m["role"], m["content"][0]["text"]) for m in second.session["input"]] == [
        ("user", "go forward ten meters"), ("assistant", "You said: go forward ten meters.")]
    assert device.of("session")[1].data["carried_items"] == 2

    # The button opens a session too (and is a no-op while one is open).
    await device.wait_for(lambda: device.count("standby", reason="idle") == 2, "the second idle close")
    app.controls.on_gesture(_tap())
    app.controls.on_gesture(_tap())
    await device.wait_for(lambda: device.count("session") == 3, "a session on the button")
    assert device.count("connecting", reason="button") == 1 and len(sessions(device)) == 3
    await device.wait_for(lambda: device.count("standby", reason="idle") == 3, "the third idle close")
    # The wake word (another component) opens one the same way.
    app.manager.wake_word()
    await device.wait_for(lambda: device.count("session") == 4, "a session on the wake word")
    app.manager.wake_word()
    assert device.count("connecting", reason="wake_word") == 1 and len(sessions(device)) == 4


def _tap():
    from hardware.gestures import Gesture, GestureEvent

    return GestureEvent(Gesture.TAP, 0.0, 0.0)


async def test_a_reply_talked_over_stops_and_the_new_words_are_answered(device_factory):
    # The model's audio comes faster than it plays (as from the service): the device holds seconds of it.
    device = await device_factory(api="live", sim_options={"speedup": 8.0})
    app = device.app
    await device.wait_state(DeviceState.IDLE)
    app.controls.say("Tell me a long story about a robot and a cat, please, with many details.")
    await device.wait_state(DeviceState.SPEAKING)
    await asyncio.sleep(1.0)   # into the reply (the echo guard learns the speaker's level first)
    device.mic.say(clip16k("goforward.raw"))
    barge = await device.wait_for(lambda: device.of("barge_in"), "the flush")
    assert barge[0].data["cause"] == "voice"
    # What it still held when the person came in was dropped, not played.
    played_ms = len(device.speaker.played_pcm().rstrip(b"\0")) // 48
    assert played_ms < app.conversation.stats.bytes_down // 48 - 1000
    answer = await device.wait_for(lambda: [e for e in device.of("reply") if "go forward" in e.data["text"]],
                                   "the answer to the new words")
    assert answer[0].data["text"] == "You said: go forward ten meters."
    assert device.of("reply")[0].data["text"].startswith("You said: Tell me a long story")
    await device.wait_state(DeviceState.IDLE)


async def test_mute_uses_the_api_and_sends_only_silence(device_factory):
    device = await device_factory(api="live")
    app = device.app
    await device.wait_state(DeviceState.IDLE)
    app.controls.say("Hello there")
    await device.wait_for(lambda: device.of("reply"), "the reply")
    sim_session = sessions(device)[0]
    app.controls.set_muted(True)
    await device.wait_state(DeviceState.MUTED)
    await device.wait_for(lambda: sim_session.muted, "session.input_audio.mute")
    replies = sim_session.counts["replies"]
    device.mic.say(clip16k("goforward.raw"))
    await device.mic.wait_said()
    assert app.conversation.stats.muted_frames > 0 and app.conversation.session_id is not None
    app.controls.set_muted(False)
    await device.wait_for(lambda: not sim_session.muted, "session.input_audio.unmute")
    await device.wait_state(DeviceState.IDLE)
    device.mic.say(clip16k("goforward.raw"))
    await device.wait_for(lambda: device.of("heard"), "the words after the unmute")
    await device.wait_for(lambda: len(device.of("reply")) == 2, "their reply")
    # What was said while muted never reached the model: one new turn, the one after the unmute.
    assert sim_session.counts["replies"] == replies + 1
    assert [e.data["text"] for e in device.of("heard")] == ["go forward ten meters"]


async def test_a_tool_runs_on_the_device_through_delegation(device_factory, capsys):
    from device.diag.daemon import say

    device = await device_factory(api="live")
    app = device.app
    await device.wait_state(DeviceState.IDLE)
    # As `pivoice say` does it: it follows the events until the device is done speaking.
    code = await asyncio.to_thread(say, app.config.control.socket, "Please set the volume to 30", wait=True,
                                   timeout_s=60)
    assert code == 0 and capsys.readouterr().out.splitlines()[-1].endswith("Done. The result is volume 30.")
    assert "thinking" in device.states()                 # the delegated task showed on the LEDs
    result = await device.wait_for(lambda: device.of("tool_result"), "the tool's result")
    assert result[0].data["name"] == "set_volume" and result[0].data["outcome"] == "ok"
    assert app.controls.volume == 30 and device.of("volume")[0].data["level"] == 30
    spoken = await device.wait_for(lambda: [e for e in device.of("reply") if "Done." in e.data["text"]],
                                   "the spoken result")
    assert spoken[0].data["text"].endswith("Done. The result is volume 30.")
    delegation = sessions(device)[0].delegations.tasks[0]
    assert delegation.done and delegation.call["name"] == "set_volume"
    declared = sessions(device)[0].session["delegation"]
    assert declared["type"] == "responses" and "set_volume" in [t["name"] for t in declared["responses"]["tools"]]
    await device.wait_state(DeviceState.IDLE)


async def test_expiry_reopens_with_the_history_and_no_error(device_factory):
    device = await device_factory(api="live", sim_options={"session_limit_s": 5.0})
    app = device.app
    await device.wait_state(DeviceState.IDLE)
    device.mic.say(clip16k("goforward.raw"))
    await device.wait_for(lambda: device.of("reply"), "the reply")
    await device.wait_for(lambda: device.count("session") == 2, "the next session after the expiry")
    assert device.of("session_closed")[0].data["reason"] == "expired" and app.manager.stats.expired == 1
    second = sessions(device)[1]
    assert second.session["input"][0]["content"][0]["text"] == "go forward ten meters"
    assert device.count("link_down") == 0 and DeviceState.OFFLINE.value not in device.states()[1:]
    app.controls.say("What did I say before?")
    reply = await device.wait_for(lambda: device.of("reply")[1:], "the answer in the next session")
    assert reply[0].data["text"] == "Earlier you said: go forward ten meters."


async def test_a_bad_key_is_the_error_state_with_its_fix_and_no_loop(device_factory):
    device = await device_factory(api="live", key="sk-bad", sim_options={"api_keys": frozenset({"sk-good"})})
    app = device.app
    await device.wait_state(DeviceState.IDLE)
    assert app.controls.say("Hello") is None
    await device.wait_state(DeviceState.ERROR)
    down = device.of("link_down")[0].data
    assert down["fatal"] and down["cause"] == "auth" and down["retry_in_s"] >= 600
    status = app.status()
    assert status["link"] == "error" and "sk-bad" not in str(status) and "401" in status["last_error"]
    device.mic.say(clip16k("goforward.raw"))          # speech does not make it try again and again
    await device.mic.wait_said()
    assert device.sim.stats.refused == 1 and app.manager.stats.connects == 0
    assert app.controls.say("Hello again") is not None   # says why it cannot
    assert app.machine.state is DeviceState.ERROR


async def test_a_dropped_link_backs_off_and_the_conversation_goes_on(device_factory):
    device = await device_factory(api="live")
    app = device.app
    await device.wait_state(DeviceState.IDLE)
    device.mic.say(clip16k("goforward.raw"))
    await device.wait_for(lambda: device.of("reply"), "the reply")
    await device.sim.drop_all()                                 # the network goes away mid-session
    down = await device.wait_for(lambda: device.of("link_down"), "the link going down")
    assert not down[0].data["fatal"] and down[0].data["cause"] == "network" and down[0].data["retry_in_s"] > 0
    assert DeviceState.OFFLINE.value in device.states()
    await device.wait_for(lambda: device.count("session") == 2, "the session again, after the backoff")
    await device.wait_state(DeviceState.IDLE)
    assert sessions(device)[1].session["input"][0]["content"][0]["text"] == "go forward ten meters"
    assert app.manager.stats.reconnects == 1 and app.manager.stats.connects == 2


def test_a_realtime_device_does_not_load_gpt_lives_modules():
    """GPT-Live's modules are imported only for ``[realtime] api = "live"``: 0.9 MB of the
    daemon's resident memory otherwise (the real-time bench's daemon, 2026-11-28)."""
    probe = ("import sys\n"
             "from device import config\n"
             "from device.app import App\n"
             "for api in ('realtime', 'live'):\n"
             "    App(config.parse({'realtime': {'api': api, 'simulator': True}, 'audio': {'backend': 'simulated'},\n"
             "                      'gpio': {'pin_factory': 'mock'}}))\n"
             "    print(api, sorted(m for m in sys.modules if m.startswith('device.live')) != [],\n"
             "          'device.live.wiring' in sys.modules)\n")
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, check=True)
    assert run.stdout.split("\n")[:2] == ["realtime False False", "live True True"], run.stdout + run.stderr
