"""A talk-over on hold, then dismissed: the reply goes on from the first sample the person did
not hear. Through a real Speaker (PyAudio -> ALSA `default` -> a private PulseAudio whose null
sink plays in real time), recorded off the sink's monitor; the reply is a ramp, so each sample
heard says which sample of the reply it was."""

from __future__ import annotations

import shutil
import subprocess
import threading

import numpy as np
import pytest

from device.audio.playback import PlaybackBuffer
from hardware.audio import Speaker

from .conftest import PULSE_RATE as RATE

pytestmark = pytest.mark.skipif(not shutil.which("pulseaudio"), reason="PulseAudio is not installed (./install.sh --dev)")


def test_a_dismissed_talk_over_resumes_the_reply_where_the_person_stopped_hearing_it(pulse):
    n = 32767                                             # 0.68 s: sample i is i - 32768 (never 0)
    ramp = (np.arange(n) - 32768).astype("<i2")
    recorder = subprocess.Popen(["parec", "-d", "speaker.monitor", "--format=s16le", f"--rate={RATE}",
                                 "--channels=1", "--latency-msec=10", "--raw"], stdout=subprocess.PIPE)
    recorded: list[bytes] = []
    recording = threading.Event()

    def record() -> None:
        assert recorder.stdout is not None
        while chunk := recorder.stdout.read1(4096):
            recorded.append(chunk)
            recording.set()

    threading.Thread(target=record, daemon=True).start()
    assert recording.wait(10)
    playback = PlaybackBuffer(RATE)
    reads = 0
    playing, resumed, drained = threading.Event(), threading.Event(), threading.Event()

    def read(nbytes: int) -> bytes:
        nonlocal reads
        pcm = playback.read(nbytes)
        reads += bool(pcm)
        if reads >= 6:
            playing.set()                                  # 0.24 s into the reply
        if resumed.is_set() and not pcm and not playback.active:
            drained.set()
        return pcm

    speaker = Speaker("default", read, preferred_rate=RATE)
    try:
        speaker.open()
        assert speaker.rate == RATE
        playback.push("item_1", ramp.tobytes())
        playback.finish()
        speaker.wake()
        assert playing.wait(10)
        # what AudioPipeline._hold_talk_over does on the loop: queue again what the speaker's
        # buffer holds, then drop that buffer
        playback.hold(int(1000 * speaker.lead_s))
        speaker.hush()
        threading.Event().wait(0.3)                        # the hold's verdict: nobody went on
        resumed.set()
        playback.resume()
        speaker.wake()
        assert drained.wait(10)
        threading.Event().wait(0.3)                        # the rest reaches the monitor
    finally:
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
    last_before, first_after = int(heard[cut]), int(heard[cut + 1])
    skipped = first_after - last_before - 1
    assert skipped <= RATE // 1000, f"{skipped * 1000 // RATE} ms of the reply were never heard"
    assert -skipped <= RATE // 10, f"{-skipped * 1000 // RATE} ms were heard twice"
    assert len(jumps) == 1, f"the reply jumped again after it resumed: {steps[jumps[1:]]}"
