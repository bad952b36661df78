"""The speaker says how long what it takes now waits in the sound card's buffer (Speaker.lead_s,
what the echo reference is stamped with): nothing when its stream has just started, the
buffer's length once it runs full. Through PyAudio -> ALSA `default` -> a private PulseAudio
with a null sink (a sound card that plays in real time)."""

from __future__ import annotations

import shutil
import threading

import numpy as np
import pytest

from hardware.audio import Speaker

from .conftest import PULSE_RATE as RATE

pytestmark = pytest.mark.skipif(not shutil.which("pulseaudio"), reason="PulseAudio is not installed (./install.sh --dev)")


def test_the_speaker_tells_how_long_its_buffer_holds_what_it_takes(pulse):
    tone = (0.2 * 32767 * np.sin(2 * np.pi * 440 * np.arange(RATE) / RATE)).astype("<i2").tobytes()
    leads: list[float] = []
    enough = threading.Event()
    speaker: Speaker

    def read(nbytes: int) -> bytes:
        leads.append(speaker.lead_s)
        if len(leads) >= 30:
            enough.set()
        return tone[:nbytes]

    speaker = Speaker("default", read, preferred_rate=RATE)
    speaker.open()
    try:
        enough.wait(10)                          # 30 periods handed over (or give up)
    finally:
        speaker.close()
    assert len(leads) >= 30
    assert leads[0] == 0.0                       # a stream just started: heard at once
    assert max(leads) >= 0.02                    # later: behind what the buffer holds
    assert max(leads) <= 0.5


def test_a_hush_drops_what_the_buffer_holds(pulse):
    """A barge-in: what the sound card holds is dropped, not played out; the stream goes on."""
    tone = (0.2 * 32767 * np.sin(2 * np.pi * 440 * np.arange(RATE) / RATE)).astype("<i2").tobytes()
    reads: list[tuple[int, float]] = []       # (hushes so far, lead) at each read
    full, after = threading.Event(), threading.Event()
    speaker: Speaker

    def read(nbytes: int) -> bytes:
        reads.append((speaker.hushes, speaker.lead_s))
        if len(reads) >= 30:
            full.set()
        if sum(h == 1 for h, _ in reads) >= 10:
            after.set()
        return tone[:nbytes]

    speaker = Speaker("default", read, preferred_rate=RATE)
    speaker.open()
    try:
        full.wait(10)
        speaker.hush()
        after.wait(10)
        alive = speaker.alive
    finally:
        speaker.close()
    before = [lead for h, lead in reads if h == 0]
    hushed = [lead for h, lead in reads if h == 1]
    assert max(before) >= 0.02                   # the buffer held audio when it was hushed
    assert len(hushed) >= 10 and alive           # and it went on playing after
    assert hushed[0] == 0.0                      # nothing left of what it held
    assert speaker.errors == 0
