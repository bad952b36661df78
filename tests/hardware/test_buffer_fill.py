"""What the speaker's buffer holds (hardware.audio.BufferFill): the lead a talk-over's hold gives
back and a barge-in's truncation leaves unheard. Times are inputs."""

from __future__ import annotations

import pytest

from hardware.audio import BufferFill


def test_what_was_measured_plays_out_in_real_time():
    fill = BufferFill()
    fill.measured(0.05, now=10.0)
    assert fill.held(10.0) == pytest.approx(0.05)
    assert fill.held(10.02) == pytest.approx(0.03)
    assert fill.held(10.2) == 0.0                 # played out: never negative


def test_the_period_being_written_counts_until_it_is_heard():
    """The writer measures the device's buffer before each read, then writes the 40 ms period it
    read (the write may wait for room). A talk-over on the loop meanwhile must give back both:
    before, the lead was the measurement alone, and the period being written was dropped
    unheard by the hush and never played again (a resumed reply skipped up to 40 ms, and a
    barge-in's truncation counted it as heard)."""
    fill = BufferFill()
    fill.measured(0.045, now=1.000)               # before the read
    fill.took(0.040, now=1.001)                   # what the read took, before its write returns
    assert fill.held(1.001) == pytest.approx(0.084)
    assert fill.held(1.030) == pytest.approx(0.055)
    fill.measured(0.020, now=1.040)               # the next measurement replaces the count
    assert fill.held(1.040) == pytest.approx(0.020)


def test_a_dropped_or_stopped_buffer_holds_nothing():
    fill = BufferFill()
    fill.measured(0.08, now=5.0)
    fill.measured(0.0, now=5.01)                  # the hush (abort) or a pause (stop)
    assert fill.held(5.01) == 0.0
