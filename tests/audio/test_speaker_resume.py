"""A talk-over on hold, then dismissed: the reply goes on from the first sample the person did
not hear. Through a real Speaker (PyAudio -> ALSA `default` -> a private PulseAudio whose null
sink plays in real time), recorded off the sink's monitor; the reply is a ramp, so each sample
heard says which sample of the reply it was.

The hold is taken where the loop can meet the speaker's writer thread: while the writer is
inside its read (the period handed out, not yet written), and between two periods (written,
before the next read). The writer is held there by a hook until the hold is done, so each
window is met every run."""

from __future__ import annotations

import shutil
import subprocess
import threading

import numpy as np
import pytest

from device.audio.playback import PlaybackBuffer
from hardware.audio import BufferFill, Speaker

from .conftest import PULSE_RATE as RATE

pytestmark = pytest.mark.skipif(not shutil.which("pulseaudio"),
                                reason="PulseAudio is not installed (./install.sh --dev)")

PERIODS_BEFORE = 6       # the hold comes after the 6th period of the reply (0.24 s in)


class _Fill(BufferFill):
    """Calls ``after_write`` each time the writer has counted a period into the buffer."""

    after_write = staticmethod(lambda: None)

    def wrote(self, seconds: float, now: float) -> None:
        super().wrote(seconds, now)
        self.after_write()


def _record(last: int) -> tuple[subprocess.Popen, list[bytes], threading.Event]:
    """parec on the sink's monitor; the event is set once the sample ``last`` has been heard."""
    recorder = subprocess.Popen(["parec", "-d", "speaker.monitor", "--format=s16le", f"--rate={RATE}",
                                 "--channels=1", "--latency-msec=10", "--raw"], stdout=subprocess.PIPE)
    recorded: list[bytes] = []
    recording, heard_last = threading.Event(), threading.Event()

    def run() -> None:
        assert recorder.stdout is not None
        while chunk := recorder.stdout.read1(4096):
            recorded.append(chunk)
            recording.set()
            if not heard_last.is_set():
                pcm = b"".join(recorded)                  # < 1.5 s at 48 kHz: joined whole, aligned
                if last in np.frombuffer(pcm[:len(pcm) // 2 * 2], "<i2"):
                    heard_last.set()

    threading.Thread(target=run, daemon=True).start()
    assert recording.wait(10)
    return recorder, recorded, heard_last


@pytest.mark.parametrize("window", ["inside_a_read", "between_periods"])
def test_a_dismissed_talk_over_resumes_the_reply_where_the_person_stopped_hearing_it(pulse, window):
    n = 32767                                             # 0.68 s: sample i is i - 32768 (never 0)
    ramp = (np.arange(n) - 32768).astype("<i2")
    recorder, recorded, heard_last = _record(last=n - 1 - 32768)
    playback = PlaybackBuffer(RATE)
    reads = 0
    at_window, go_on, resumed, drained = (threading.Event() for _ in range(4))

    def wait_for_the_hold() -> None:
        if reads == PERIODS_BEFORE and not at_window.is_set():
            at_window.set()
            assert go_on.wait(10)

    def read(nbytes: int) -> bytes:
        nonlocal reads
        pcm = playback.read(nbytes)
        reads += bool(pcm)
        if window == "inside_a_read":
            wait_for_the_hold()
        if resumed.is_set() and not pcm and not playback.active:
            drained.set()
        return pcm

    speaker = Speaker("default", read, preferred_rate=RATE)
    speaker.fill = fill = _Fill()
    if window == "between_periods":
        fill.after_write = wait_for_the_hold
    try:
        speaker.open()
        assert speaker.rate == RATE
        playback.push("item_1", ramp.tobytes())
        playback.finish()
        speaker.wake()
        assert at_window.wait(10)
        # what AudioPipeline._hold_talk_over does on the loop: queue again what the speaker
        # holds unheard, then drop its buffer
        playback.hold(int(1000 * speaker.unheard_s))
        speaker.hush()
        go_on.set()
        threading.Event().wait(0.3)                        # the hold's verdict: nobody went on
        resumed.set()
        playback.resume()
        speaker.wake()
        assert drained.wait(10)
        assert heard_last.wait(10), "the reply's last sample never reached the monitor"
    finally:
        go_on.set()
        speaker.close()
        recorder.terminate()
        recorder.wait(10)
    heard = np.frombuffer(b"".join(recorded), "<i2").astype(np.int64) + 32768
    heard = heard[heard != 32768]                          # the silence (0) around and in the hold
    steps = np.diff(heard)
    jumps = np.flatnonzero(steps != 1)                     # where the reply did not go on by one sample
    assert len(heard) > n // 2 and heard[0] < n // 10 and heard[-1] == n - 1   # (parec may miss the first ms)
    assert len(jumps) >= 1, "the hold never interrupted the reply"
    cut = jumps[0]
    skipped = int(heard[cut + 1]) - int(heard[cut]) - 1
    assert skipped <= RATE // 1000, f"{skipped * 1000 // RATE} ms of the reply were never heard"
    assert -skipped <= RATE // 10, f"{-skipped * 1000 // RATE} ms were heard twice"
    assert len(jumps) == 1, f"the reply jumped again after it resumed: {steps[jumps[1:]]}"
