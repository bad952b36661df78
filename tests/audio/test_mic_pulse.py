"""The microphone through a sound card that runs in real time: PyAudio -> ALSA `default` -> a
private PulseAudio, whose null sink's monitor is the microphone (tests/audio/conftest.py)."""

from __future__ import annotations

import asyncio
import shutil
import signal
import subprocess

import numpy as np
import pytest

from hardware.audio import Microphone
from hardware.bridge import LoopBridge
from hardware.interfaces import Gap

from .conftest import PULSE_RATE

pytestmark = pytest.mark.skipif(not shutil.which("pulseaudio"), reason="PulseAudio is not installed (./install.sh --dev)")
RAMP_TOP = 20000


async def _until(condition, tries: int = 1000) -> None:
    for _ in range(tries):
        if condition():
            return
        await asyncio.sleep(0.01)


def _runs(x: np.ndarray) -> list[tuple[int, int]]:
    """(first value, length) of each stretch of a ramp that counts up by one (wrapping)."""
    steps = np.diff(x.astype(np.int64)) % RAMP_TOP
    breaks = np.flatnonzero(steps != 1) + 1
    return [(int(x[a]), int(b - a)) for a, b in zip(np.r_[0, breaks], np.r_[breaks, len(x)])]


async def test_a_change_of_period_loses_only_the_reopen(pulse):
    """50 ms periods, then 100 ms while a ramp plays: the stream is reopened at the new period,
    what the old one held is handed over first, the first period after it says audio may have
    been lost, and what was lost is at most the reopen's few milliseconds (PulseAudio here
    loses none: its new stream takes over where the old one stopped)."""
    ramp = (np.arange(PULSE_RATE * 2) % RAMP_TOP + 1).astype("<i2")     # 2 s, never zero
    got: list[tuple[bytes, bool]] = []
    mic = Microphone("default", lambda pcm, over: got.append((pcm, over)), bridge=LoopBridge(),
                     period_ms=50, preferred_rate=PULSE_RATE, channels=1)
    mic.open()
    try:
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
        assert mic.reopens == 1 and mic.overflows == 0
    finally:
        mic.close()
    flags = [over for _, over in got]
    assert flags.count(Gap.REOPEN) == 1 and flags.count(Gap.NONE) == len(flags) - 1
    gap = flags.index(Gap.REOPEN)
    assert all(len(pcm) == PULSE_RATE // 10 * 2 for pcm, _ in got[gap:])
    before = np.frombuffer(b"".join(pcm for pcm, _ in got[:gap]), "<i2")
    after = np.frombuffer(b"".join(pcm for pcm, _ in got[gap:]), "<i2")
    start = int(np.flatnonzero(before)[0])
    end = int(np.flatnonzero(after)[-1]) + 1
    first, second = _runs(before[start:]), _runs(after[:end])
    # one unbroken stretch of the ramp on each side of the reopen (PulseAudio's null sink joins
    # a stream from the block after the one it starts in, so the first value need not be 1)
    assert len(first) == 1 and len(second) == 1, (first[:3], second[:3])
    lost = (second[0][0] - (first[0][0] + first[0][1] - 1) - 1) % RAMP_TOP
    print(f"lost at the reopen: {lost} samples ({1000 * lost / PULSE_RATE:.1f} ms)")
    assert lost < PULSE_RATE // 20                      # a few ms at most; never a whole period


async def test_a_microphone_whose_sound_server_stalled_closes_and_opens_again(pulse):
    """close() while the reader is inside a read that cannot return (the sound server stopped):
    it returns, frees nothing under that read (PortAudio would crash the process), and the
    reader closes its own stream once the read returns; the microphone opens again after."""
    got: list[int] = []
    mic = Microphone("default", lambda pcm, over: got.append(len(pcm)), bridge=LoopBridge(),
                     period_ms=50, preferred_rate=PULSE_RATE, channels=1)
    mic.open()
    await _until(lambda: len(got) >= 3)
    reader = mic._thread
    assert reader is not None
    pulse.send_signal(signal.SIGSTOP)
    try:
        await asyncio.sleep(0.3)                 # the reader waits in a read that cannot return
        mic.close()
        assert not mic.alive and mic._stream is None and mic._pa is None
    finally:
        pulse.send_signal(signal.SIGCONT)
    await _until(lambda: not reader.is_alive())
    assert not reader.is_alive()                 # it let go of its stream once the read returned
    count = len(got)
    mic.open()
    try:
        await _until(lambda: len(got) >= count + 3)
        assert len(got) >= count + 3 and mic.alive and mic._thread is not reader
    finally:
        mic.close()


async def test_a_stream_that_never_delivers_ends_the_reader_so_the_device_is_reopened(pulse, caplog):
    """A source that delivers nothing (suspended here; a sound server dying while a new stream
    starts looks the same to PortAudio): the reader gives up after SETTLE_LIMIT_S and says why,
    so keep_open reopens the device; once the source runs, it opens and delivers."""
    subprocess.run(["pactl", "suspend-sink", "speaker", "1"], check=True, capture_output=True)
    got: list[int] = []
    mic = Microphone("default", lambda pcm, over: got.append(len(pcm)), bridge=LoopBridge(),
                     period_ms=50, preferred_rate=PULSE_RATE, channels=1)
    mic.SETTLE_LIMIT_S = 0.5
    mic.open()
    try:
        await _until(lambda: not mic.alive)
        assert not mic.alive and got == []
        assert "microphone failed: no audio 0.5 s after opening its stream" in caplog.text
    finally:
        mic.close()
    subprocess.run(["pactl", "suspend-sink", "speaker", "0"], check=True, capture_output=True)
    mic.SETTLE_LIMIT_S = Microphone.SETTLE_LIMIT_S
    mic.open()
    try:
        await _until(lambda: len(got) >= 3)
        assert len(got) >= 3 and mic.alive
    finally:
        mic.close()


async def test_a_card_read_seconds_after_its_stream_opened_is_not_taken_for_one_without_a_clock(pulse, caplog):
    """The reader held up 4 s between reopening the stream (a new period) and reading it: the
    sound server buffers what the card captured meanwhile, and the reader then reads it back to
    back. That is more than 3 s of audio at once, yet no more than the card captured since the
    stream opened: it is not paced (hardware/pacing.py), and nothing is left waiting."""
    got: list[tuple[bytes, bool]] = []
    mic = Microphone("default", lambda pcm, over: got.append((pcm, over)), bridge=LoopBridge(),
                     period_ms=50, preferred_rate=PULSE_RATE, channels=1)
    settle, calls = mic._settle, []

    def late(stream, frames, stop):
        calls.append(stream)
        if len(calls) == 2:
            stop.wait(4.0)        # the reopen's first read comes 4 s late (a stalled process)
        return settle(stream, frames, stop)

    mic._settle = late
    mic.open()
    try:
        await _until(lambda: len(got) >= 3)
        mic.set_period(100)
        await _until(lambda: len(calls) == 2, tries=3000)
        count = len(got)
        await _until(lambda: len(got) >= count + 50, tries=3000)   # the 4 s, and 1 s more
        assert len(got) >= count + 50 and mic.reopens == 1 and mic.overflows == 0
        assert not mic.unclocked
        assert mic._stream.get_read_available() < PULSE_RATE // 10   # caught up: not held back
    finally:
        mic.close()
    assert not [r for r in caplog.records if "faster than real time" in r.getMessage()]
