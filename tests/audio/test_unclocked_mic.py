"""A capture source with no clock (ALSA's null PCM, the file plugin) and an event loop that falls
behind: what the microphone's reader hands over stays bounded, and nothing is lost or reordered.

Before: `input_device = "null"` made the daemon 2.5 GB resident at 150 % of a core in 12 s,
and its Realtime session never opened (the reader posted every period it read, unbounded)."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from device import appstatus
from hardware.audio import Microphone
from hardware.bridge import LoopBridge
from hardware.interfaces import Gap
from hardware.pacing import BURST_S, Pacer


def test_a_clocked_source_is_never_held_back():
    """Audio at its rate, with the jitter and catch-ups of a real card (a reader held up for
    0.8 s reads what waited at once), and a crystal 0.1 % fast, for two hours."""
    pacer = Pacer(48000, start=100.0)
    frames = 2400   # 50 ms periods
    for i in range(2 * 3600 * 20):
        now = 100.0 + (i + 1) * 0.05 / 1.001     # a period is read once it has been captured
        stall = 100.0 + (i // 5000) * 250.0 + 200.0
        if stall <= now < stall + 0.8:           # the reader held up: what waited is read at once
            now = stall + 0.8
        assert pacer.delivered(frames, now) <= now
    assert not pacer.unclocked


def test_a_card_read_late_after_it_was_opened_is_never_held_back():
    """The reader held up 4 s between opening the stream and its first read (swap, a stalled
    process): the sound server buffered the 4 s, which are then read back to back."""
    pacer = Pacer(48000, start=50.0)          # opened at 50.0
    now = 54.05
    for _ in range(81):                       # 4.05 s waiting, read at once
        assert pacer.delivered(2400, now) <= now
    for i in range(1, 200):
        now = 54.05 + i * 0.05
        assert pacer.delivered(2400, now) <= now
    assert not pacer.unclocked


def test_a_source_without_a_clock_is_paced_to_real_time_after_its_burst():
    pacer = Pacer(16000, start=10.0)
    due = [pacer.delivered(800, 10.0) for _ in range(80)]   # 4 s read at once
    first = next(i for i, d in enumerate(due) if d > 10.0)
    assert pacer.unclocked and first > 0
    # the burst (3 s) went at once; from the period past it, each 50 ms of audio is due 50 ms later
    assert first * 0.05 == pytest.approx(BURST_S) and due[first] == pytest.approx(10.05)
    assert np.allclose(np.diff(due[first:]), 0.05)
    # reads on time stay on time: no drift, no burst again
    now = due[-1]
    for _ in range(100):
        nxt = pacer.delivered(800, now)
        assert nxt == pytest.approx(now + 0.05)
        now = nxt


def test_a_source_known_to_have_no_clock_is_paced_from_its_first_read():
    """A reopen (a new period) starts the rule again; the reader passes burst 0 once it knows."""
    pacer = Pacer(16000, start=5.0, burst_s=0.0)
    assert pacer.delivered(800, 5.0) == pytest.approx(5.05) and pacer.unclocked


def _ramp(tmp_path, seconds: float) -> str:
    """A 16 kHz mono recording whose every sample is its own index (mod 2^16): any period lost,
    repeated or reordered shows."""
    path = tmp_path / "ramp.raw"
    path.write_bytes((np.arange(int(16000 * seconds)) % 65536).astype(np.uint16).tobytes())
    return str(path)


def _joined(got: list[tuple[bytes, int]]) -> np.ndarray:
    return np.frombuffer(b"".join(pcm for pcm, _ in got), "<u2")


async def test_an_event_loop_held_up_holds_the_reader_back_and_loses_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("FAKEMIC_RAW", _ramp(tmp_path, 60))
    got: list[tuple[bytes, int]] = []
    mic = Microphone("fakemic", lambda pcm, gap: got.append((bytes(pcm), gap)), bridge=LoopBridge(), period_ms=50)
    mic.open()
    try:
        # the loop is held up (a synchronous wait on it) until the reader has had to wait for it
        deadline = time.monotonic() + 30
        while mic.loop_behind == 0:
            assert time.monotonic() < deadline, "the reader never waited for the loop"
            time.sleep(0.01)
        assert got == []        # nothing ran on the loop meanwhile
        # what waits for the loop: QUEUED_S of audio, not what the source could deliver
        await asyncio.sleep(0)
        queued = len(got)
        assert queued == int(1000 * Microphone.QUEUED_S) // 50
        while len(got) < queued + 20:
            assert time.monotonic() < deadline, "the reader did not go on once the loop took its audio"
            await asyncio.sleep(0.01)
    finally:
        mic.close()
    samples = _joined(got)
    assert np.array_equal(samples, np.arange(len(samples)) % 65536)   # in order, none lost
    assert all(gap == Gap.NONE for _, gap in got)


async def test_a_microphone_without_a_clock_is_read_at_real_time_and_says_so(tmp_path, caplog, monkeypatch):
    """ALSA's file plugin over null, as `input_device = "null"` is: read flat out before."""
    monkeypatch.setenv("FAKEMIC_RAW", _ramp(tmp_path, 600))
    got: list[tuple[bytes, int]] = []
    mic = Microphone("fakemic", lambda pcm, gap: got.append((bytes(pcm), gap)), bridge=LoopBridge(), period_ms=50)
    caplog.set_level(logging.WARNING, "hardware.microphone")
    start = time.monotonic()
    mic.open()
    try:
        while not mic.unclocked or len(got) < BURST_S * 20 + 10:
            assert time.monotonic() < start + 60, f"{len(got)} periods, unclocked {mic.unclocked}"
            await asyncio.sleep(0.02)
        elapsed = time.monotonic() - start
        audio_s = len(_joined(got)) / 16000
    finally:
        mic.close()
    # never more than the burst ahead of the wall clock (a slow machine only makes it less)
    assert audio_s <= BURST_S + 1.25 * elapsed + 0.1
    warning = [r.getMessage() for r in caplog.records if "faster than real time" in r.getMessage()]
    assert len(warning) == 1 and "'fakemic'" in warning[0] and "input_device" in warning[0]
    line = appstatus.device_line("microphone", mic, {})
    assert "no clock" in line and "read at real time" in line
    samples = _joined(got)
    assert np.array_equal(samples, np.arange(len(samples)) % 65536)


def test_a_daemon_whose_microphone_is_alsas_null_plugin_connects_and_says_what_is_wrong(tmp_path):
    """`pivoice run` with a microphone that is ALSA's null plugin under a `plug` (an
    /etc/asound.conf that silences a missing card so; ALSA's `null` as the default is the same)."""
    root = Path(__file__).parents[2]
    asoundrc = tmp_path / "asoundrc"
    asoundrc.write_text('pcm.nullmic {\n    type plug\n    slave.pcm "null"\n}\n')
    config = tmp_path / "config.toml"
    config.write_text(f'[realtime]\nsimulator = true\n[audio]\nbackend = "pyaudio"\ninput_device = "nullmic"\n'
                      f'output_device = "fakespk"\n[gpio]\npin_factory = "mock"\n[metrics]\nlisten = ""\n'
                      f'[control]\nsocket = "{tmp_path / "c.sock"}"\n')
    env = {**os.environ, "PYTHONPATH": str(root), "OPENAI_API_KEY": "sk-test",
           "ALSA_CONFIG_PATH": f"{os.environ['ALSA_CONFIG_PATH']}:{asoundrc}"}
    pivoice = [sys.executable, "-m", "device.cli"]
    log = tmp_path / "daemon.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([*pivoice, "run", "--config", str(config)], cwd=root, env=env, stdout=out,
                                stderr=subprocess.STDOUT)
    try:
        deadline, status = time.monotonic() + 60, {}
        while status.get("link") != "up" or "no clock" not in status.get("microphone", ""):
            assert proc.poll() is None and time.monotonic() < deadline, (status, log.read_text()[-2000:])
            time.sleep(0.2)
            asked = subprocess.run([*pivoice, "status", "--json", "--config", str(config)], cwd=root, env=env,
                                   capture_output=True, text=True, timeout=30)
            status = json.loads(asked.stdout) if asked.returncode == 0 else {}
        doctor = subprocess.run([*pivoice, "doctor", "--json", "--config", str(config)], cwd=root, env=env,
                                capture_output=True, text=True, timeout=120)
        clock = [c for c in json.loads(doctor.stdout)["checks"] if c["name"] == "microphone clock"]
        assert len(clock) == 1 and clock[0]["result"] == "WARN" and "input_device" in clock[0]["fix"], doctor.stdout
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    text = log.read_text()
    assert "microphone 'nullmic' delivers audio faster than real time" in text
    assert proc.returncode == 0
