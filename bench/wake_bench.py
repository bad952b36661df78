"""Wake word detectors compared on the same audio: microWakeWord vs openWakeWord ("hey jarvis").

    PYTHONPATH=. .venv/bin/python bench/wake_bench.py

Positives: flite saying "hey jarvis" (and "hey jarvis, what time is it") in every English voice
at three speeds, each after a second of room noise. Negatives: the real human clips of
pocketsphinx-testdata (librivox, cards, goforward, numbers...) and flite sentences with near
misses ("hey travis", "hey marvin", "harvest"). Prints detections out of N, false accepts and
their rate per hour of speech, and CPU (% of one core of this machine; x10 for a Pi Zero 2 W).
Not a test: it prints, it does not assert (tests/audio/test_wake.py does).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from device.audio.wake import WakeWordDetector

RATE = 16000
CLIPS = Path("/usr/share/pocketsphinx/test/data")
VOICES = ("slt", "awb", "rms", "kal16")
STRETCH = (0.85, 1.0, 1.25)
NEAR_MISSES = ("hey travis", "hey travis, turn it off", "hey marvin", "the harvest was good this year",
               "hey, service is over", "they are jars of jam", "hey darling, is it raining")


def flite(text: str, voice: str, stretch: float = 1.0) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "x.wav"
        subprocess.run(["flite", "-voice", voice, "--setf", f"duration_stretch={stretch}", "-t", text,
                        "-o", str(out)], check=True)
        with wave.open(str(out)) as w:
            return w.readframes(w.getnframes())


def padded(pcm: bytes) -> bytes:
    noise = np.random.default_rng(0).normal(0, 30, RATE).astype(np.int16).tobytes()
    return noise + pcm + noise


def negatives() -> list[bytes]:
    out = [padded((CLIPS / n).read_bytes()) for n in ("goforward.raw", "numbers.raw", "something.raw")]
    for wav in sorted(CLIPS.glob("librivox/*.wav")) + sorted(CLIPS.glob("cards/*.wav")):
        with wave.open(str(wav)) as w:
            out.append(padded(w.readframes(w.getnframes())))
    out += [padded(flite(text, voice)) for text in NEAR_MISSES for voice in VOICES]
    return out


class OpenWakeWordDetector:
    """The same question asked of openWakeWord (80 ms chunks, shared mel + embedding models)."""

    def __init__(self, threshold: float = 0.5) -> None:
        from pyopen_wakeword import Model, OpenWakeWord, OpenWakeWordFeatures
        self._model = OpenWakeWord.from_builtin(Model.HEY_JARVIS)
        self._features = OpenWakeWordFeatures.from_builtin()
        self.threshold = threshold
        self._pending = b""

    def process(self, pcm: bytes) -> bool:
        self._pending += pcm
        heard = False
        while len(self._pending) >= 2560:
            chunk, self._pending = self._pending[:2560], self._pending[2560:]
            for embeddings in self._features.process_streaming(chunk):
                heard = heard or any(p > self.threshold for p in self._model.process_streaming(embeddings))
        return heard


def feed(detector, pcm: bytes) -> bool:
    heard = False
    for i in range(0, len(pcm) - 639, 640):                # 20 ms frames, as the VAD gets them
        result = detector.process(pcm[i:i + 640])
        heard = heard or (result.detected if hasattr(result, "detected") else result)
    return heard


def count(make, clips: list[bytes]) -> int:
    """Clips with a detection; a fresh detector per clip."""
    return sum(feed(make(), pcm) for pcm in clips)


def cpu_percent(make, clips: list[bytes]) -> float:
    """Steady state: one detector fed every clip back to back (% of one core)."""
    detector, pcm = make(), b"".join(clips)
    start = time.process_time()
    feed(detector, pcm)
    return 100 * (time.process_time() - start) / (len(pcm) / 2 / RATE)


def main() -> None:
    positives = [padded(flite(text, v, s)) for text in ("hey jarvis", "hey jarvis, what time is it")
                 for v in VOICES for s in STRETCH]
    negs = negatives()
    speech_s = sum(len(p) for p in negs) / 2 / RATE
    print(f"{len(positives)} wake clips (flite {', '.join(VOICES)} x speeds {STRETCH}); "
          f"{len(negs)} clips without it ({speech_s:.0f} s of speech)")
    print(f"{'detector':24} {'detected':>9} {'false':>6} {'false/h':>8} {'CPU %':>6} {'Pi Zero 2 W %':>14}")
    for name, make in (("microWakeWord (ours)", lambda: WakeWordDetector("hey_jarvis")),
                       ("openWakeWord 0.5", lambda: OpenWakeWordDetector(0.5))):
        found, false = count(make, positives), count(make, negs)
        cpu = cpu_percent(make, negs)
        print(f"{name:24} {found:>4}/{len(positives):<4} {false:>6} {false * 3600 / speech_s:8.1f} "
              f"{cpu:6.2f} {cpu * 10:14.1f}")


if __name__ == "__main__":
    main()
