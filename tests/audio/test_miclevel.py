"""The microphone's level for `pivoice status` (device/audio/miclevel.py), on fake time."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from device.audio.miclevel import GAP_S, SILENT_WARN_S, MicLevel, describe


def period(dbfs: float | None, n: int = 800) -> bytes:
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
    assert s["periods"] == 200 and s["no_signal_for_s"] == 0
    for i in range(200):                 # 10 s more, quieter; the word is in the window before
        level.feed(period(-65), 110 + i * 0.05)
    assert level.status(119.95)["loudest_dbfs"] == pytest.approx(-25, abs=0.2)
    for i in range(200):                 # and 10 s more: the word is gone from the status
        level.feed(period(-65), 120 + i * 0.05)
    s = level.status(130.0)
    assert s["loudest_dbfs"] == pytest.approx(-65, abs=0.2) and s["quietest_dbfs"] == pytest.approx(-65, abs=0.2)
    assert describe(s) == "loudest -65 dBFS, quietest -65 dBFS (last 10 s)"


def test_a_microphone_that_stopped_delivering_says_since_when():
    level = MicLevel()
    assert describe(level.status(0.0)) == "nothing from the microphone yet"
    level.feed(period(-50), 10.0)
    assert level.status(25.0)["periods"] == 1
    assert describe(level.status(25.0)).endswith("; the last period came 15 s ago")
    assert level.status(31.0)["periods"] == 0
    assert describe(level.status(31.0)) == "nothing from the microphone for 21 s"


def test_no_signal_for_a_minute_is_logged_once_with_its_causes(caplog):
    level = MicLevel()
    caplog.set_level(logging.WARNING, "device.audio.miclevel")
    level.feed(period(-70), 0.0)
    for i in range(1, 1300):            # 65 s of zeros
        level.feed(period(None), i * 0.05)
        if i * 0.05 < SILENT_WARN_S:
            assert not caplog.records
    assert len(caplog.records) == 1
    warning = caplog.records[0].getMessage()
    assert "no signal" in warning and "alsamixer" in warning and "noise gate" in warning
    s = level.status(65.0)
    assert s["no_signal_for_s"] == pytest.approx(65.0 - 0.05, abs=0.1) and s["loudest_dbfs"] is None
    assert describe(s).startswith("no signal for 65 s (every sample within 3 of 0): nothing reaches the microphone. "
                                  "A capture switch")
    # a signal ends it; the next silent minute is on the status, not in the log again
    level.feed(period(-70), 65.0)
    assert level.status(65.0)["no_signal_for_s"] == 0
    for i in range(1, 1300):
        level.feed(period(None), 65.0 + i * 0.05)
    assert len(caplog.records) == 1 and level.status(130.0)["no_signal_for_s"] > SILENT_WARN_S


def test_a_muted_capture_with_dither_is_no_signal_too():
    """A codec at its lowest capture gain: +-1 of noise (-92 dBFS) is not a room."""
    level = MicLevel()
    dither = np.random.default_rng(3).integers(-1, 2, 800).astype("<i2").tobytes()
    for i in range(100):
        level.feed(dither, i * 0.05)
    s = level.status(5.0)
    assert s["no_signal_for_s"] == pytest.approx(4.95, abs=0.1)
    assert s["loudest_dbfs"] == pytest.approx(-92, abs=2)   # measured all the same
    level.feed(period(-80), 5.0)                            # a quiet room (peak ~5)
    assert level.status(5.0)["no_signal_for_s"] == 0


def test_only_delivered_time_counts_a_gap_starts_again(caplog):
    """Zeros, then nothing for five minutes (the microphone missing: its stand-in is not metered),
    then zeros again: not five minutes of no signal, and nothing logged."""
    caplog.set_level(logging.WARNING, "device.audio.miclevel")
    level = MicLevel()
    for i in range(20):
        level.feed(period(None), i * 0.05)
    level.feed(period(None), 306.0)
    assert level.status(306.0)["no_signal_for_s"] == 0 and not caplog.records
    level.feed(period(None), 306.05)
    assert 0 < level.status(306.05)["no_signal_for_s"] <= 0.1
    # an overflow or a reopen (the period after it says so) starts it again too
    level.feed(period(None), 306.1, gap=True)
    assert level.status(306.1)["no_signal_for_s"] == 0
    assert GAP_S < 5


def test_a_short_silence_is_shown_without_the_causes_and_the_numbers_read_well():
    level = MicLevel()
    for i in range(100):
        level.feed(period(-40 if i < 60 else None), i * 0.05)
    s = level.status(5.0)
    assert s["quietest_dbfs"] is None and s["no_signal_for_s"] == pytest.approx(2.0)
    assert describe(s) == "loudest -40 dBFS, quietest digital silence (last 5 s); no signal for the last 2 s"
    brief = MicLevel()
    brief.feed(np.resize(np.array([32767, -32767], "<i2"), 800).tobytes(), 0.0)   # full scale: -0.0003 dBFS
    brief.feed(period(None), 0.05)
    assert describe(brief.status(0.1)) == "loudest 0 dBFS, quietest digital silence (last 1 s)"


def test_stereo_and_an_empty_period():
    level = MicLevel()
    level.feed(b"", 0.0)
    assert level.status(0.0)["periods"] == 0
    stereo = np.repeat(np.frombuffer(period(-30), "<i2"), 2).astype("<i2").tobytes()
    level.feed(stereo, 0.05)
    assert level.status(0.1)["loudest_dbfs"] == pytest.approx(-30, abs=0.2)


def test_pivoice_status_needs_no_numpy():
    """The status and its rendering run on the standard library (a python without numpy)."""
    code = ("import sys; sys.modules['numpy'] = None\n"
            "from device.diag.daemon import render_status\n"
            "from device.audio.miclevel import describe\n"
            "print(describe({'periods': 0, 'last_s_ago': None}))")
    root = Path(__file__).parents[2]
    result = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "nothing from the microphone yet"
