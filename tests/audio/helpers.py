"""Real speech, framed as the pipeline frames it."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from device.audio.frontend import FrontEnd
from device.audio.vad import WebRtcVad

CLIPS = Path("/usr/share/pocketsphinx/test/data")


def clip16k(name: str = "goforward.raw") -> bytes:
    path = CLIPS / name
    assert path.exists(), f"{path} is missing: run ./install.sh --dev (pocketsphinx-testdata)"
    return path.read_bytes()


def silence16k(ms: int) -> bytes:
    return bytes(32 * ms)


def frames(pcm16k: bytes, *, rate: int = 16000, channels: int = 1):
    """[(pcm24, pcm16, is_speech)] for 20 ms frames, through the real front end and webrtcvad."""
    front, vad = FrontEnd(rate, channels), WebRtcVad(2)
    return [(a, b, vad.is_speech(b)) for a, b in front.feed(pcm16k)]


def speech_onset_ms(pcm16k: bytes, dbfs: float = -40.0) -> int:
    x = np.frombuffer(pcm16k, "<i2")[: len(pcm16k) // 2 // 160 * 160].reshape(-1, 160) / 32768.0
    levels = 20 * np.log10(np.sqrt((x ** 2).mean(axis=1)) + 1e-9)
    return int(np.argmax(levels >= dbfs)) * 10
