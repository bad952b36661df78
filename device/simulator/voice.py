"""Speech for the simulator's replies: 24 kHz PCM16 mono a person recognises as speech.

Uses Debian's ``flite`` when it is installed (offline, intelligible; ``apt-get install flite``);
otherwise a vowel-like buzz with the rhythm of the words, so the pipeline still carries audio
of the right length, and a warning says how to get real speech.
"""

from __future__ import annotations

import functools
import logging
import shutil
import subprocess
import tempfile
import wave
from pathlib import Path

import numpy as np
import soxr

logger = logging.getLogger(__name__)
RATE_HZ = 24000


def _to_24k(samples: np.ndarray, rate: int) -> bytes:
    if rate != RATE_HZ:
        samples = soxr.resample(samples, rate, RATE_HZ)
    pcm: bytes = np.clip(samples, -32768, 32767).astype("<i2").tobytes()
    return pcm


@functools.lru_cache(maxsize=64)
def synthesize(text: str, voice: str = "slt") -> bytes:
    """PCM16 LE mono 24 kHz for ``text``; cached, since replies repeat."""
    flite = shutil.which("flite")
    if flite:
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "say.wav"
            result = subprocess.run([flite, "-voice", voice, "-t", text, "-o", str(out)],
                                    capture_output=True, timeout=30, check=False)
            if result.returncode == 0 and out.exists():
                with wave.open(str(out)) as wav:
                    rate = wav.getframerate()
                    pcm = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").astype(np.float32)
                return _to_24k(pcm, rate)
            logger.warning("flite failed (%s); using a synthetic voice", result.stderr[:200])
    else:
        logger.warning("flite is not installed; the simulator speaks in buzzes (apt-get install flite)")
    return _buzz(text)


def _buzz(text: str) -> bytes:
    """A voiced-sounding stand-in: 180 ms of a 140 Hz harmonic tone per word, 70 ms gaps."""
    word = np.arange(int(0.18 * RATE_HZ)) / RATE_HZ
    tone = sum(np.sin(2 * np.pi * 140 * k * word) / k for k in range(1, 6))
    tone *= np.hanning(len(word)) * 6000
    gap = np.zeros(int(0.07 * RATE_HZ))
    parts = [np.concatenate([tone, gap]) for _ in text.split()] or [gap]
    return _to_24k(np.concatenate(parts).astype(np.float32), RATE_HZ)
