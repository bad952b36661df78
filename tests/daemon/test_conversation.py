"""A person talks to the device; the device answers out loud; sessions rotate under it."""

from __future__ import annotations

from device.state import DeviceState

from .conftest import clip16k


async def test_spoken_turn_gets_a_spoken_reply(device_factory):
    device = await device_factory()
    await device.wait_state(DeviceState.IDLE)
    device.mic.say(clip16k("goforward.raw"))
    reply = await device.spoken_reply(0)
    assert "go forward ten meters" in reply.data["text"].lower()
    assert device.app.machine.state is DeviceState.IDLE
    # The LEDs went through the whole cycle, in order.
    states = device.states()
    for expected in ("idle", "listening", "thinking", "speaking"):
        assert expected in states
    assert states.index("listening") < states.index("thinking") < states.index("speaking")
    assert states[-1] == "idle"
    # The speaker played all the reply audio the server sent (the speaker keeps whole periods).
    played_ms = len(device.speaker.played_pcm().rstrip(b"\0")) // 48
    received_ms = sum(device.app.conversation.received_ms.values())
    assert received_ms > 1000
    assert abs(played_ms - received_ms) <= 20
