"""The speaker says how long what it takes now waits in the sound card's buffer (Speaker.lead_s,
what the echo reference is stamped with): nothing when its stream has just started, the
buffer's length once it runs full. Through PyAudio -> ALSA `default` -> a private PulseAudio
with a null sink (a sound card that plays in real time)."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time

import numpy as np
import pytest

from hardware.audio import Speaker

RATE = 48000
pytestmark = pytest.mark.skipif(not shutil.which("pulseaudio"), reason="PulseAudio is not installed (./install.sh --dev)")


@pytest.fixture
def pulse(tmp_path, monkeypatch):
    runtime = tmp_path / "pulse"
    runtime.mkdir(mode=0o700)
    env = {"XDG_RUNTIME_DIR": str(runtime), "PULSE_SERVER": f"unix:{runtime}/native"}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    proc = subprocess.Popen(
        ["pulseaudio", "-n", "--daemonize=no", "--exit-idle-time=-1", "--use-pid-file=no",
         "-L", f"module-native-protocol-unix socket={runtime}/native auth-anonymous=1",
         "-L", f"module-null-sink sink_name=speaker rate={RATE} channels=1 format=s16le"],
        env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        if subprocess.run(["pactl", "info"], capture_output=True, check=False).returncode == 0:
            break
        time.sleep(0.1)
    subprocess.run(["pactl", "set-default-sink", "speaker"], check=True, capture_output=True)
    yield
    proc.terminate()
    proc.wait(5)


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
