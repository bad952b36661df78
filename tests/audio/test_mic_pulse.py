"""The microphone through a sound card that runs in real time: PyAudio -> ALSA `default` -> a
private PulseAudio, whose null sink's monitor is the microphone (tests/audio/conftest.py)."""

from __future__ import annotations

import asyncio
import shutil
import subprocess

import numpy as np
import pytest

from hardware.audio import Microphone
from hardware.bridge import LoopBridge

from .conftest import PULSE_RATE

pytestmark = pytest.mark.skipif(not shutil.which("pulseaudio"), reason="PulseAudio is not installed (./install.sh --dev)")


async def _until(condition, tries: int = 1000) -> None:
    for _ in range(tries):
        if condition():
            return
        await asyncio.sleep(0.01)


async def test_a_change_of_period_loses_no_sample(pulse):
    """50 ms reads, then 100 ms reads while a ramp plays: the ramp comes through whole and in
    order across the change, no period says audio was lost, and the stream was never reopened."""
    ramp = (np.arange(PULSE_RATE * 2) % 20000 + 1).astype("<i2")     # 2 s, never zero
    got: list[tuple[bytes, bool]] = []
    mic = Microphone("default", lambda pcm, over: got.append((pcm, over)), bridge=LoopBridge(),
                     period_ms=50, preferred_rate=PULSE_RATE, channels=1)
    mic.open()
    try:
        stream = mic._stream
        player = subprocess.Popen(["paplay", "--raw", "--device=speaker", f"--rate={PULSE_RATE}", "--channels=1",
                                   "--format=s16le"], stdin=subprocess.PIPE)
        assert player.stdin is not None
        player.stdin.write(ramp.tobytes())
        player.stdin.close()
        await _until(lambda: any(np.frombuffer(pcm, "<i2").any() for pcm, _ in got))
        mic.set_period(100)
        await _until(lambda: player.poll() is not None)
        count = len(got)
        await _until(lambda: len(got) >= count + 3)      # what was still on its way
        assert mic._stream is stream and mic.overflows == 0
    finally:
        mic.close()
    sizes = [len(pcm) // 2 for pcm, _ in got]
    first = sizes.index(PULSE_RATE // 10)
    assert set(sizes[:first]) == {PULSE_RATE // 20} and set(sizes[first:]) == {PULSE_RATE // 10}
    assert not any(over for _, over in got)
    heard = np.frombuffer(b"".join(pcm for pcm, _ in got), "<i2")
    start = int(np.flatnonzero(heard)[0])
    # PulseAudio's null sink gives its monitor a stream from the block after the one it starts
    # in (parec misses the same): the ramp's value says where it was joined.
    joined = int(heard[start]) - 1
    assert joined < PULSE_RATE // 10
    assert np.array_equal(heard[start:start + len(ramp) - joined], ramp[joined:])
    assert start < first * PULSE_RATE // 20        # the ramp began before the change: it spans it
