"""The microphone's front end: a period of device audio is framed when it arrives (nothing held
back for a resampler's next block), and the 16 kHz it makes is the same speech."""

from __future__ import annotations

import numpy as np
import pytest
import soxr

from device.audio.decimate import Decimator
from device.audio.frontend import FrontEnd
from device.audio.vad import WebRtcVad

from .helpers import clip16k


def speech48k() -> np.ndarray:
    clip = np.frombuffer(clip16k(), "<i2")
    return soxr.resample(clip, 16000, 48000).astype(np.int16)


def held_back_ms(front: FrontEnd, audio: np.ndarray, period_ms: int, rate: int = 48000) -> list[int]:
    """Per period handed to the front end: how much of the audio so far is not yet in a frame."""
    n, out, held = rate * period_ms // 1000, 0, []
    for k in range(len(audio) // n):
        out += len(front.frames(audio[k * n:(k + 1) * n].tobytes())) * front.frame_ms
        held.append((k + 1) * period_ms - out)
    return held


@pytest.mark.parametrize("period_ms", [20, 40, 100])
def test_a_period_of_whole_frames_is_framed_when_it_arrives(period_ms):
    """A person talking over the reply is heard in the period their voice arrives in, not one
    later (soxr held 20-40 ms of each period back: README "Audio", barge-in)."""
    held = held_back_ms(FrontEnd(48000, 1), speech48k(), period_ms)
    assert len(held) > 20 and max(held) == 0


def test_at_50_ms_periods_only_the_part_frame_waits():
    held = held_back_ms(FrontEnd(48000, 1), speech48k(), 50)
    assert max(held) == 10 and min(held) == 0


@pytest.mark.parametrize("rate", [32000, 96000])
def test_other_whole_multiples_of_16_khz_are_framed_at_once(rate):
    audio = soxr.resample(np.frombuffer(clip16k(), "<i2"), 16000, rate).astype(np.int16)
    assert max(held_back_ms(FrontEnd(rate, 1), audio, 40, rate)) == 0


def test_44_1_khz_still_converts():
    audio = soxr.resample(np.frombuffer(clip16k(), "<i2"), 16000, 44100).astype(np.int16)
    held = held_back_ms(FrontEnd(44100, 1), audio, 50, 44100)
    assert len(held) > 20 and max(held) <= 60   # soxr's blocks: a period at most


def test_the_decimated_speech_is_the_same_speech():
    """webrtcvad on the 48 kHz clip through the front end agrees with it on the 16 kHz original."""
    vad_a, vad_b = WebRtcVad(2), WebRtcVad(2)
    original = clip16k()
    ours = b"".join(FrontEnd(48000, 1).frames(speech48k().tobytes()))
    n = 640
    a = [vad_a.is_speech(original[i:i + n]) for i in range(0, min(len(original), len(ours)) - n, n)]
    b = [vad_b.is_speech(ours[i:i + n]) for i in range(0, min(len(original), len(ours)) - n, n)]
    assert sum(a) > 50
    assert sum(x == y for x, y in zip(a, b)) >= 0.95 * len(a)


def level(x: np.ndarray) -> float:
    x = x.astype(np.float64)[200:-200]
    return float(10 * np.log10((x * x).mean() + 1e-12))


@pytest.mark.parametrize("hz,lo,hi", [(300, -0.1, 0.1), (3000, -0.1, 0.1), (6000, -1.5, 0.1),
                                      (8800, -200, -80), (9600, -200, -80), (15000, -200, -80)])
def test_speech_passes_and_what_would_fold_into_it_does_not(hz, lo, hi):
    t = np.arange(48000) / 48000
    x = (8000 * np.sin(2 * np.pi * hz * t)).astype(np.int16)
    y = Decimator(3).process(x)
    assert len(y) == 16000
    assert lo <= level(y) - level(x) <= hi


def test_streaming_in_any_pieces_is_the_same_as_at_once():
    rng = np.random.default_rng(7)
    x = speech48k()
    whole = Decimator(3).process(x)
    d, parts, i = Decimator(3), [], 0
    while i < len(x):
        n = int(rng.integers(1, 3000))
        parts.append(d.process(x[i:i + n]))
        i += n
    assert np.array_equal(np.concatenate(parts), whole)
