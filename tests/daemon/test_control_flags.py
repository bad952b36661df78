"""``mute`` and ``talk`` over the control socket take JSON booleans only (a raw client, so the
CLI's own check does not hide the daemon's)."""

from __future__ import annotations

import asyncio
import json
import socket

from device.state import DeviceState


def raw_request(path: str, obj: dict) -> dict:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(30)
        sock.connect(path)
        sock.sendall(json.dumps(obj).encode() + b"\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    return json.loads(data)


async def test_mute_refuses_a_string_flag_and_keeps_the_state(device_factory):
    device = await device_factory()
    path = device.app.config.control.socket
    await device.wait_state(DeviceState.IDLE)
    for bad in ("false", 0, 1, [], {"x": 1}):
        reply = await asyncio.to_thread(raw_request, path, {"cmd": "mute", "muted": bad})
        assert reply["ok"] is False and "true" in reply["error"]
        assert device.app.turns.muted is False
    assert (await asyncio.to_thread(raw_request, path, {"cmd": "mute", "muted": True}))["muted"] is True
    await device.wait_state(DeviceState.MUTED)
    # settle before teardown stops the app: on 3.11 App._systemd's wait_for can swallow a cancel
    # that races a state event (an app.py bug reported separately), and the app would not stop
    await asyncio.sleep(0.3)


async def test_talk_refuses_a_non_boolean_flag(device_factory):
    device = await device_factory(turns={"mode": "push_to_talk"})
    path = device.app.config.control.socket
    await device.wait_state(DeviceState.IDLE)
    reply = await asyncio.to_thread(raw_request, path, {"cmd": "talk", "on": "no"})
    assert reply["ok"] is False and "true" in reply["error"] and device.app.turns.talking is False
