"""What the speaker holds that nobody has heard yet (hardware.audio.BufferFill): the lead its
echo reference is stamped with, and what a talk-over's hold gives back and a barge-in's
truncation leaves unheard. Times are inputs."""

from __future__ import annotations

import pytest

from hardware.audio import BufferFill


def test_what_was_measured_plays_out_in_real_time():
    fill = BufferFill()
    fill.measured(0.05, now=10.0)
    assert fill.lead(10.0) == pytest.approx(0.05) == fill.unheard(10.0)
    assert fill.lead(10.02) == pytest.approx(0.03)
    assert fill.lead(10.2) == 0.0                 # played out: never negative


def test_the_period_being_taken_is_unheard_from_before_the_read_until_it_is_heard():
    """The writer measures the device's buffer, announces the 40 ms period it takes (before its
    read hands any of it out), writes it (the write may wait for room), and counts it in the
    buffer. A talk-over on the loop at any point in that must give the period back: before,
    the lead was the measurement alone, and a period taken or just written was dropped unheard
    by the hush and never played again (a resumed reply skipped 30 ms in the real-time test),
    and a barge-in's truncation counted it as heard. The lead (the echo reference's stamp) is
    the buffer alone until the write."""
    fill = BufferFill()
    fill.measured(0.045, now=1.000)
    fill.taking(0.040)                            # before the read
    assert fill.lead(1.001) == pytest.approx(0.044)
    assert fill.unheard(1.001) == pytest.approx(0.084)
    fill.taking(0.025)                            # the read found 25 ms of reply (the rest is padding)
    assert fill.unheard(1.001) == pytest.approx(0.069)
    fill.wrote(0.040, now=1.002)                  # the write returned: the whole period is in the buffer
    assert fill.lead(1.002) == pytest.approx(0.083) == fill.unheard(1.002)
    assert fill.unheard(1.030) == pytest.approx(0.055)
    fill.measured(0.020, now=1.040)               # the next measurement replaces the count
    assert fill.unheard(1.040) == pytest.approx(0.020)


def test_a_dropped_or_stopped_buffer_holds_nothing():
    fill = BufferFill()
    fill.measured(0.08, now=5.0)
    fill.taking(0.04)
    fill.measured(0.0, now=5.01)                  # the hush (abort) or a pause (stop)
    assert fill.unheard(5.01) == 0.0
