"""The ReSpeaker HATs' APA102 LEDs through the real apa102-pi library: its SPI writes,
captured on a stand-in for the kernel's spidev (tests/hardware/apa102_spi.py), encode each
device state's colour; the LEDs' power pin (GPIO12, active low) is switched on and off."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from math import ceil
from pathlib import Path

import pytest

from hardware.leds import PATTERNS

pytest.importorskip("apa102_pi", reason="pip install apa102-pi gpiod (the [apa102] extra)")
ROOT = Path(__file__).parents[2]


@pytest.fixture(scope="module")
def capture() -> dict:
    result = subprocess.run([sys.executable, "-m", "tests.hardware.apa102_spi"], check=False, cwd=ROOT, capture_output=True,
                            text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(ROOT),
                                                        "BLINKA_FORCEBOARD": "RASPBERRY_PI_4B",
                                                        "BLINKA_FORCECHIP": "BCM2XXX"})
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.splitlines()[-1])


def leds_in(stream: list[int], count: int) -> list[tuple[int, int, int, int]]:
    """APA102 frames: 4 zero bytes, then per LED 0b111 + 5-bit brightness, blue, green, red."""
    for i in range(len(stream) - 4 - 4 * count + 1):
        if stream[i:i + 4] == [0, 0, 0, 0] and all(stream[i + 4 + 4 * k] >= 0xE0 for k in range(count)):
            body = stream[i + 4:i + 4 + 4 * count]
            return [(body[4 * k] & 0x1F, body[4 * k + 3], body[4 * k + 2], body[4 * k + 1]) for k in range(count)]
    raise AssertionError(f"no APA102 frame of {count} LEDs in {stream}")


def expected(state: str) -> tuple[int, int, int]:
    from device.state import DeviceState

    r, g, b = PATTERNS[DeviceState(state)].colour_at(0)
    return tuple(int(255 * min(1.0, c)) for c in (r, g, b))


def test_the_strip_is_opened_on_spi0_ce0(capture):
    assert capture["opened"] == [[0, 0]]


@pytest.mark.parametrize("state", ["listening", "muted", "offline", "idle"])
def test_each_state_writes_its_colour_to_all_three_leds(capture, state):
    frame = capture["frames"][state]
    leds = leds_in(frame["bytes"], 3)
    brightness = ceil(50 * 31 / 100)  # [gpio] brightness 0.5 -> 50 % of the 5-bit global level
    assert leds == [(brightness, *expected(state))] * 3
    assert frame["power_level"] is False  # GPIO12 low: the LEDs are powered


def test_closing_turns_them_dark_and_unpowered(capture):
    closed = capture["frames"]["closed"]
    assert all(led[1:] == (0, 0, 0) for led in leds_in(closed["bytes"], 3))
    # the mock pin's history: its initial low, high as gpiozero claims it (off), low (powered)
    # for the whole run, high (off) at close, then released
    assert closed["power_levels"][1:4] == [True, False, True]
