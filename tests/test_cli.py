"""The `pivoice` command as a user runs it: real processes, real sockets."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import soxr
from pocketsphinx import Decoder

from device.errors import AuthenticationError
from device.realtime.connection import Endpoint, RealtimeConnection

PIVOICE = [sys.executable, "-m", "device.cli"]


def transcribe_wav(path: Path) -> str:
    with wave.open(str(path)) as wav:
        rate = wav.getframerate()
        samples = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").astype(np.float32)
    pcm = np.clip(soxr.resample(samples, rate, 16000), -32768, 32767).astype("<i2").tobytes()
    decoder = Decoder(samprate=16000, loglevel="FATAL")
    decoder.start_utt()
    decoder.process_raw(pcm, full_utt=True)
    decoder.end_utt()
    return decoder.hyp().hypstr if decoder.hyp() else ""


def test_demo_live_connects_on_demand_and_delegates_a_tool(tmp_path):
    out = tmp_path / "said.wav"
    result = subprocess.run([*PIVOICE, "demo", "--api", "live", "--out", str(out), "--speedup", "8"],
                            capture_output=True, text=True, timeout=200, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout
    assert "no session (standby, start)" in lines and "opening a session (speech)" in lines
    assert "heard “go forward ten meters”" in lines and "said “You said: go forward ten meters.”" in lines
    assert "tool     set_volume({\"level\": 30})" in lines and "Done. The result is volume 30." in lines
    assert re.search(r"no session \(standby, idle\): [\d.]+ s billed", lines)
    assert "opening a session (button)" in lines
    assert re.search(r"session sess_\w+ live, [1-9]\d* message\(s\) of history as input", lines)
    assert "said “Earlier you said: go forward ten meters.”" in lines
    with wave.open(str(out)) as wav:   # what the device said, played to the end
        assert wav.getnframes() / wav.getframerate() > 5


def test_demo_runs_the_whole_device_through_a_rotation(tmp_path):
    out = tmp_path / "said.wav"
    result = subprocess.run([*PIVOICE, "demo", "--out", str(out), "--speedup", "8"], capture_output=True,
                            text=True, timeout=200, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout
    assert "heard “go forward ten meters”" in lines
    assert "says “You said: go forward ten meters.”" in lines
    for state in ("idle", "listening", "thinking", "speaking", "muted"):
        assert f"leds     {state} (" in lines
    assert "tool     get_time({})" in lines
    # the rotation carried the conversation over, and the person heard the answer
    assert re.search(r"session sess_\w+ live, \d+ s to its limit, [1-9]\d* item\(s\) carried over", lines)
    assert "says “Earlier you said: go forward ten meters.”" in lines
    assert re.search(r"barge-in \(button\): playback stopped, reply truncated at \d+ ms", lines)
    assert "(fresh conversation)" in lines
    assert re.search(r"done: 1 spoken turn\(s\), \d+ replies, [1-9] rotation\(s\)", lines)
    heard = transcribe_wav(out)
    # an offline recogniser hears the device's own words in what it played
    assert {"you", "said", "forward", "ten"} <= set(heard.split()), heard


def test_simulator_command_serves_the_realtime_api(tmp_path):
    env = dict(os.environ, PIVOICE_SIMULATOR_KEYS="sk-one,sk-two")
    proc = subprocess.Popen([*PIVOICE, "simulator", "--port", "0", "--session-limit", "30"], stdout=subprocess.PIPE,
                            text=True, env=env)
    try:
        line = proc.stdout.readline()
        url = re.search(r"ws://\S+", line).group(0)

        async def talk():
            conn = await RealtimeConnection.open(Endpoint(url=url, model="gpt-realtime", api_key="sk-two"))
            remaining = conn.session.expires_at - __import__("time").time()
            await conn.close()
            try:
                await RealtimeConnection.open(Endpoint(url=url, model="gpt-realtime", api_key="sk-three"))
            except AuthenticationError:
                return remaining
            raise AssertionError("a key outside PIVOICE_SIMULATOR_KEYS was accepted")

        assert 25 < asyncio.run(talk()) <= 30
    finally:
        proc.terminate()
        proc.wait(10)


def test_unknown_dialect_is_a_clear_error():
    result = subprocess.run([*PIVOICE, "simulator", "--dialect", "v3"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "--dialect = 'v3' is not a dialect; use \"ga\" or \"beta\"" in result.stderr
