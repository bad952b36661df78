"""The echo canceller's reference is what the speaker plays, placed at when it is heard: the
speaker's own buffer ahead of it counted, and a reply's gaps (the network late: the buffer ran
dry, the speaker played silence) kept as silence, not closed up."""

from __future__ import annotations

import numpy as np
import pytest

from device.audio import aec
from device.audio.pipeline import AudioPipeline
from device.audio.turns import TurnMode, TurnTaker

RATE = 48000
PERIOD = RATE // 50 * 2                        # bytes of one 20 ms speaker period
pytestmark = pytest.mark.skipif(not aec.available("speex"), reason="libspeexdsp is not installed")


def tone24(ms: int) -> bytes:
    t = np.arange(24 * ms) / 24000
    return (0.3 * 32767 * np.sin(2 * np.pi * 440 * t)).astype("<i2").tobytes()


def speaking(lead_s: float, steps) -> AudioPipeline:
    """A pipeline whose speaker holds ``lead_s`` before what it takes; ``steps`` is a list of
    ("play", ms) and ("read", periods), the clock moving 20 ms per period read."""
    now = [100.0]
    p = AudioPipeline(TurnTaker(TurnMode.SERVER_VAD), canceller=aec.create("speex"), clock=lambda: now[0])
    p.speaker_lead = lambda: lead_s
    p.speaker_opened(RATE)
    for kind, n in steps:
        if kind == "play":
            p.play("item_1", tone24(n))
        else:
            for _ in range(n):
                p.read(PERIOD)
                now[0] += 0.02
    return p


def heard(p: AudioPipeline, at: float) -> bool:
    """Whether the reference for the 10 ms of microphone that ended at ``at`` has sound."""
    ref = p.canceller.timeline.read(160, at)
    return bool(np.abs(ref).max() > 100)


def test_the_reference_counts_what_the_speakers_buffer_holds_before_it():
    steps = [("play", 400), ("read", 10)]
    assert heard(speaking(0.0, steps), 100.05)
    assert not heard(speaking(0.06, steps), 100.05)       # still in the speaker's buffer then
    assert heard(speaking(0.06, steps), 100.11)


def test_a_gap_in_the_reply_stays_a_gap_in_the_reference():
    # 200 ms of reply, played out; the buffer runs dry for 60 ms (the speaker plays silence),
    # then the rest comes
    steps = [("play", 200), ("read", 10), ("read", 3), ("play", 300), ("read", 15)]
    assert heard(speaking(0.0, steps), 100.10)
    assert not heard(speaking(0.0, steps), 100.24)       # the silence the speaker played
    assert heard(speaking(0.0, steps), 100.32)           # the rest, where it was really played
