"""The button and the control socket, as a person and an admin use them."""

from __future__ import annotations

import asyncio
import json
import os
import stat

import pytest

from device import control
from device.state import DeviceState

from .conftest import clip16k


async def test_push_to_talk_with_the_button(device_factory):
    device = await device_factory(turns={"mode": "push_to_talk"})
    app = device.app
    await device.wait_state(DeviceState.IDLE)
    pin = device.pins.pin(17)
    # Speech without the button is not sent in push-to-talk mode.
    device.mic.say(clip16k("goforward.raw", pad_ms=300))
    await device.mic.wait_said()
    assert app.conversation.stats.appends == 0

    pin.drive_low()
    await device.wait_state(DeviceState.LISTENING)
    device.mic.say(clip16k("goforward.raw", pad_ms=300))
    await device.mic.wait_said()
    pin.drive_high()
    reply = await device.spoken_reply(0)
    assert "go forward ten meters" in reply.data["text"].lower()
    # Talking through the 3 s long-hold mark keeps the turn; it does not wipe the conversation.
    assert [e.data["gesture"] for e in device.of("button")] == ["hold_start", "long_hold", "hold_end"]
    assert device.count("new_conversation") == 0


async def test_double_tap_mutes_and_unmutes(device_factory):
    device = await device_factory()
    await device.wait_state(DeviceState.IDLE)
    pin = device.pins.pin(17)

    async def tap():
        pin.drive_low()
        await asyncio.sleep(0.15)
        pin.drive_high()
        await asyncio.sleep(0.12)

    await tap()
    await tap()
    await device.wait_state(DeviceState.MUTED)
    device.mic.say(clip16k("goforward.raw"))
    await device.mic.wait_said()
    assert device.app.conversation.stats.appends == 0     # muted means nothing leaves the device
    await tap()
    await tap()
    await device.wait_state(DeviceState.IDLE)


def _request(path, obj):
    return asyncio.to_thread(control.request, path, obj)


async def test_control_socket_status_events_say_and_mute(device_factory):
    device = await device_factory()
    app = device.app
    path = app.config.control.socket
    await device.wait_state(DeviceState.IDLE)
    mode = stat.S_IMODE(os.stat(path).st_mode)
    assert mode == 0o660

    status = await _request(path, {"cmd": "status"})
    assert status["ok"] and status["state"] == "idle" and status["link"] == "up"
    assert status["session_id"].startswith("sess_") and status["rotation_in_s"] > 0
    assert status["api_key"] == "set" and "test-key" not in json.dumps(status)
    # what an admin needs to see of the audio: the microphone's period, barge-ins, dropped audio
    assert status["microphone"].endswith(f"Hz, {app.mic.period_ms} ms periods"), status["microphone"]
    assert status["voice_barge_ins"] == 0 and status["speaker_hushes"] == 0

    events: list[dict] = []
    stream = control.stream(path, {"cmd": "events"})

    def read_until_reply():
        for event in stream:
            events.append(event)
            if event["kind"] == "state" and event["state"] == "idle" and any(e["kind"] == "reply" for e in events):
                return

    reader = asyncio.create_task(asyncio.to_thread(read_until_reply))
    await asyncio.sleep(0.2)
    said = await _request(path, {"cmd": "say", "text": "Hello there"})
    assert said == {"ok": True, "queued": True}
    await asyncio.wait_for(reader, 60)
    stream.close()
    kinds = [e["kind"] for e in events]
    assert "say" in kinds and "reply" in kinds
    assert [e["state"] for e in events if e["kind"] == "state"][-2:] == ["speaking", "idle"]
    assert next(e for e in events if e["kind"] == "reply")["text"] == "You said: Hello there."

    assert (await _request(path, {"cmd": "mute"}))["muted"] is True
    await device.wait_state(DeviceState.MUTED)
    assert (await _request(path, {"cmd": "mute", "muted": False}))["muted"] is False
    assert (await _request(path, {"cmd": "talk"}))["ok"] is False            # VAD mode: just speak
    bad = await _request(path, {"cmd": "reboot"})
    assert bad["ok"] is False and "unknown command" in bad["error"]


def test_client_says_clearly_when_the_daemon_is_not_running(tmp_path):
    with pytest.raises(control.DaemonUnreachable, match="not running"):
        control.request(str(tmp_path / "nothing.sock"), {"cmd": "status"})
