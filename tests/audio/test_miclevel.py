"""The microphone's level for `pivoice status` (device/audio/miclevel.py), on fake time."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from device.audio.miclevel import SILENT_WARN_S, MicLevel, describe


def period(dbfs: float | None, n: int = 800, seed: int = 1) -> bytes:
    """50 ms at 16 kHz: a tone at this RMS level, or digital silence (None)."""
    if dbfs is None:
        return bytes(2 * n)
    t = np.arange(n)
    x = np.sin(2 * np.pi * 440 * t / 16000) * np.sqrt(2) * 32768 * 10 ** (dbfs / 20)
    return np.round(x).astype("<i2").tobytes()


def test_the_loudest_and_quietest_period_of_the_last_ten_to_twenty_seconds():
    level = MicLevel()
    for i in range(200):                 # 10 s of a quiet room, one word at 4 s
        level.feed(period(-25 if 80 <= i < 90 else -60), 100 + i * 0.05)
    s = level.status(110.0)
    assert s["loudest_dbfs"] == pytest.approx(-25, abs=0.2) and s["quietest_dbfs"] == pytest.approx(-60, abs=0.2)
    assert s["periods"] == 200 and s["zeros_for_s"] == 0
    for i in range(200):                 # 10 s more, quieter; the word is in the window before
        level.feed(period(-65), 110 + i * 0.05)
    assert level.status(119.95)["loudest_dbfs"] == pytest.approx(-25, abs=0.2)
    for i in range(200):                 # and 10 s more: the word is gone from the status
        level.feed(period(-65), 120 + i * 0.05)
    s = level.status(130.0)
    assert s["loudest_dbfs"] == pytest.approx(-65, abs=0.2) and s["quietest_dbfs"] == pytest.approx(-65, abs=0.2)
    assert describe(s) == "loudest -65 dBFS, quietest -65 dBFS (last 10 s)"


def test_a_microphone_that_stopped_delivering_shows_nothing_after_twenty_seconds():
    level = MicLevel()
    level.feed(period(-50), 10.0)
    assert level.status(25.0)["periods"] == 1
    assert level.status(31.0)["periods"] == 0
    assert describe(level.status(31.0)) == "nothing from the microphone in the last 20 s"
    assert describe(MicLevel().status(0.0)) == "nothing from the microphone in the last 20 s"


def test_digital_silence_for_a_minute_is_logged_once_with_its_causes(caplog):
    level = MicLevel()
    caplog.set_level(logging.WARNING, "device.audio.miclevel")
    level.feed(period(-70), 0.0)
    for i in range(1, 1300):            # 65 s of zeros
        level.feed(period(None), i * 0.05)
        if i * 0.05 < SILENT_WARN_S:
            assert not caplog.records
    assert len(caplog.records) == 1
    warning = caplog.records[0].getMessage()
    assert "only digital silence" in warning and "alsamixer" in warning and "noise gate" in warning
    s = level.status(65.0)
    assert s["zeros_for_s"] == pytest.approx(65.0 - 0.05, abs=0.1) and s["loudest_dbfs"] is None
    assert describe(s).startswith("digital silence (every sample 0) for 65 s: nothing reaches the microphone")
    # a signal ends it; the next silent minute is on the status, not in the log again
    level.feed(period(-70), 65.0)
    assert level.status(65.0)["zeros_for_s"] == 0
    for i in range(1, 1300):
        level.feed(period(None), 65.0 + i * 0.05)
    assert len(caplog.records) == 1 and level.status(130.0)["zeros_for_s"] > SILENT_WARN_S


def test_a_short_digital_silence_is_shown_without_the_causes():
    level = MicLevel()
    for i in range(100):
        level.feed(period(-40 if i < 60 else None), i * 0.05)
    s = level.status(5.0)
    assert s["quietest_dbfs"] is None and s["zeros_for_s"] == pytest.approx(2.0)
    assert describe(s) == "loudest -40 dBFS, quietest digital silence (last 5 s); digital silence for the last 2 s"
    only = MicLevel()
    for i in range(40):
        only.feed(period(None), i * 0.05)
    assert describe(only.status(2.0)) == "digital silence (every sample 0) for 2 s"


def test_stereo_and_odd_lengths_and_an_empty_period():
    level = MicLevel()
    level.feed(b"", 0.0)
    assert level.status(0.0)["periods"] == 0
    stereo = np.repeat(np.frombuffer(period(-30), "<i2"), 2).astype("<i2").tobytes()
    level.feed(stereo, 0.05)
    assert level.status(0.1)["loudest_dbfs"] == pytest.approx(-30, abs=0.2)
