"""`pivoice status` says how loud the microphone is, while the daemon holds it."""

from __future__ import annotations

import asyncio

import pytest

from device.diag import doctor
from device.diag.daemon import render_status

from .conftest import clip16k


async def test_the_status_shows_the_rooms_level_and_a_word_said_in_it(device_factory):
    device = await device_factory(speed=4.0)
    await device.wait_for(lambda: device.app.status()["mic_level"]["periods"] >= 10, "microphone periods")
    quiet = device.app.status()["mic_level"]
    # the simulated microphone's noise floor is -70 dBFS
    assert quiet["loudest_dbfs"] == pytest.approx(-70, abs=2) and quiet["quietest_dbfs"] == pytest.approx(-70, abs=2)
    device.mic.say(clip16k("goforward.raw"))
    await device.mic.wait_said()
    loud = device.app.status()["mic_level"]
    assert loud["loudest_dbfs"] > -40   # (its padding is digital silence)
    assert "mic level   loudest " in render_status(device.app.status())


async def test_a_microphone_that_delivers_only_zeros_says_so(device_factory):
    device = await device_factory(speed=4.0, mic_noise_dbfs=None)
    await device.wait_for(lambda: device.app.status()["mic_level"]["no_signal_for_s"] >= 1, "a second of zeros")
    s = device.app.status()
    assert s["mic_level"]["loudest_dbfs"] is None
    assert "mic level   loudest digital silence, quietest digital silence (last " in render_status(s)
    assert "; no signal for the last " in render_status(s)
    # a minute of it (the meter's clock moved on: no test waits a minute)
    device.app.mic_level.silent_since -= 61
    device.app.mic_level.feed(bytes(1600), device.app.mic_level.last_at)
    checks = await asyncio.to_thread(doctor.check_service, str(device.app.config.control.socket))
    mic = [c for c in checks if c.name == "mic level"]
    assert len(mic) == 1 and mic[0].result == "WARN" and "nothing reaches the microphone" in mic[0].detail
    assert "alsamixer" in mic[0].fix
    assert "A capture switch or volume at 0" in render_status(device.app.status())


async def test_a_missing_microphone_has_no_level_though_its_stand_in_runs(device_factory):
    """The silence standing in for a missing microphone is not metered: it is not the room."""
    device = await device_factory(mic_present=False, speed=4.0)
    await device.wait_for(lambda: device.app.status()["stand_in_frames"] > 10, "the stand-in's silence")
    s = device.app.status()
    assert s["mic_level"]["periods"] == 0
    assert "nothing from the microphone yet" in render_status(s)
