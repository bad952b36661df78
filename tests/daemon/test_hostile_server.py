"""What a server or a clock does can neither wedge nor hot-loop the device (issue: nothing a
server, a config, a socket or the clock does can crash, wedge or hot-loop the device)."""

from __future__ import annotations

import pytest

from device.realtime.manager import Options
from device.state import DeviceState

from .hostile import HostileServer, created_only, deltas_without_done, flood


@pytest.fixture
async def hostile():
    servers: list[HostileServer] = []

    async def start(**options) -> HostileServer:
        server = await HostileServer(**options).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.stop()


def options(**overrides) -> Options:
    return Options(**{"session_limit_s": 1800.0, "rotate_margin_s": 60.0, "ping_interval_s": None, **overrides})


@pytest.mark.parametrize("expires_in_s", [-3600.0, -1.0, 0.0, 400 * 24 * 3600.0])
async def test_a_clock_that_says_the_session_already_expired_is_not_believed(device_factory, hostile, expires_in_s):
    # expires_at in the past: a Pi without a real-time clock before NTP, or a clock an hour
    # fast; far in the future: a clock in 1970. Neither may decide when to reconnect.
    server = await hostile(expires_in_s=expires_in_s)
    device = await device_factory(realtime={"url": server.url}, manager=options())
    await device.wait_state(DeviceState.IDLE)
    status = device.app.status()
    assert status["clock_distrusted"] == 1
    assert 1700 < status["deadline_in_s"] <= 1800      # [realtime] session_limit instead
    assert server.connections == 1 and status["rotations"] == 0


async def test_a_server_that_ends_every_session_at_once_gets_backoff_not_a_loop(device_factory, hostile):
    server = await hostile(close_after_setup=True)
    device = await device_factory(realtime={"url": server.url}, manager=options())
    await device.wait_for(lambda: device.app.manager.stats.reconnects >= 4, "four reconnects")
    delays = [e.data["retry_in_s"] for e in device.of("link_down")]
    assert len(delays) >= 4
    # every reconnect waited its turn in the doubling, jittered backoff
    assert all(0 <= delay <= 0.5 * 2 ** attempt for attempt, delay in enumerate(delays[:4]))
    assert server.connections <= device.app.manager.stats.reconnects + 1


async def test_a_reply_that_never_finishes_is_given_up(device_factory, hostile):
    server = await hostile(on_response=created_only)
    device = await device_factory(realtime={"url": server.url}, manager=options())
    app = device.app
    app.conversation.reply_timeout_s = 2.0
    await device.wait_state(DeviceState.IDLE)
    app.controls.say("hello?")
    await device.wait_state(DeviceState.THINKING)
    await device.wait_state(DeviceState.IDLE)          # not thinking for good
    assert device.of("error", code="reply_timeout")
    assert app.manager.idle()                          # and a rotation is not blocked by it
    assert any(e.get("type") == "response.cancel" for e in server.received)


async def test_audio_without_a_done_does_not_leave_the_device_speaking(device_factory, hostile):
    server = await hostile(on_response=deltas_without_done)
    device = await device_factory(realtime={"url": server.url}, manager=options())
    app = device.app
    app.conversation.reply_timeout_s = 2.0
    await device.wait_state(DeviceState.IDLE)
    app.controls.say("talk to me")
    await device.wait_state(DeviceState.SPEAKING)
    await device.wait_state(DeviceState.IDLE)
    assert device.of("error", code="reply_timeout")
    assert not app.pipeline.speaking and app.manager.idle()


async def test_a_flood_of_reply_audio_is_bounded(device_factory, hostile):
    server = await hostile(on_response=flood)
    device = await device_factory(realtime={"url": server.url}, manager=options())
    app = device.app
    await device.wait_state(DeviceState.IDLE)
    app.controls.say("flood me")
    await device.wait_for(lambda: device.count("reply") >= 1, "the flood to end")
    playback = app.pipeline.playback
    # an hour of audio arrived; at most the bound (two minutes) is kept, the rest counted
    assert playback.queued_ms() <= playback.max_bytes / 2 / playback.rate * 1000
    assert app.status()["playback_dropped_ms"] > 50 * 60 * 1000
    app.controls.interrupt()
    await device.wait_state(DeviceState.IDLE)
