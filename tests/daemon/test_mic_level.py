"""`pivoice status` says how loud the microphone is, while the daemon holds it."""

from __future__ import annotations

import pytest

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
    await device.wait_for(lambda: device.app.status()["mic_level"]["zeros_for_s"] > 1, "a second of zeros")
    s = device.app.status()
    assert s["mic_level"]["loudest_dbfs"] is None
    assert "mic level   digital silence (every sample 0) for" in render_status(s)


async def test_a_missing_microphone_has_no_level(device_factory):
    device = await device_factory(mic_present=False)
    s = device.app.status()
    assert s["mic_level"]["periods"] == 0
    assert "nothing from the microphone in the last 20 s" in render_status(s)
