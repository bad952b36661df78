"""The whole device on GPT-Live (``[realtime] api = "live"``), on simulated hardware, against the
built-in Live simulator over loopback: connect on demand, a spoken conversation, a reply talked
over, mute, a tool through delegation, idle close and reopen with the history, expiry, bad key."""

from __future__ import annotations

import asyncio

from device.live import events as ev
from device.live.manager import LiveSessionManager
from device.state import DeviceState

from .conftest import clip16k


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
    states = device.states()
    assert states.index("listening") < states.index("speaking") < len(states) - 1 and states[-1] == "idle"
    assert device.count("session") == 1 and device.count("connecting", reason="speech") == 1
    # Everything the model sent was played, and only silence or speech went up, all of it.
    played_ms = len(device.speaker.played_pcm().rstrip(b"\0")) // 48
    assert abs(played_ms - app.conversation.stats.bytes_down // 48) <= 20
    sim_session = sessions(device)[0]
    assert sim_session.clock_ms >= 3000 and app.status()["link"] == "up"
