"""Short words said over a reply ("no", "stop", "wait"...): does the talk-over hold stop the reply?

    PYTHONPATH=. .venv/bin/python bench/short_words_bench.py

A person's one-word interruption against the hold's rule (device/audio/bargehold.py): the speaker
goes silent at the onset, then the talk-over is confirmed only by speech after ``settle_ms``. A
word whose loud part falls mostly inside the settle is dismissed and the reply plays on.

ONLY PART OF THE PATH: direct calls into AudioPipeline (no PortAudio, no PulseAudio, no echo,
no canceller): flite's words, at 6 dB under full scale, straight into the microphone while a
reply plays. It measures the rule, not the room: the real-time bench (realtime_bench.py
``bargein``) is where the figures of record come from. The naive baseline is the same pipeline
with no hold (``hold_settings = None``: every talk-over stops the reply at once), which is what
let the canceller's rare leaks cut replies off.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import wave
from pathlib import Path

import numpy as np
import soxr

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from device.audio.pipeline import AudioPipeline  # noqa: E402
from device.audio.turns import EchoGuard, TurnMode, TurnTaker  # noqa: E402

WORDS = ("no", "stop", "wait", "hey", "yes", "no no", "stop it", "hold on")
VOICES = ("slt", "rms", "awb", "kal")
SPEAKER_RATE = 24000
PERIOD = SPEAKER_RATE // 50 * 2        # 20 ms of the speaker, in bytes
MIC = 16000 // 50 * 2                  # 20 ms of microphone, in bytes


def flite16(text: str, voice: str) -> np.ndarray:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "x.wav"
        subprocess.run(["flite", "-voice", voice, "-t", text, "-o", str(out)], check=True)
        with wave.open(str(out)) as w:
            x = np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float32)
            y = soxr.resample(x, w.getframerate(), 16000)
    loud = np.flatnonzero(np.abs(y) > 300)
    return y[max(0, loud[0] - 800):loud[-1] + 800] * 0.5     # 50 ms of silence each side


class Listener:
    def __init__(self) -> None:
        self.barge_ins = 0

    def turn(self, actions: object) -> None:
        pass

    def barged_in(self, cause: str, played_ms: dict[str, int]) -> None:
        self.barge_ins += 1

    def playback_started(self, item_id: str) -> None:
        pass

    def playback_drained(self) -> None:
        pass


def stopped(word: np.ndarray, *, hold: bool) -> bool:
    """True when the word stopped the reply (a barge-in), False when the reply played on."""
    p = AudioPipeline(TurnTaker(TurnMode.SERVER_VAD, echo_guard=EchoGuard.OFF), clock=lambda: 100.0)
    if not hold:
        p.hold_settings = None
    p.speaker_lead = lambda: 0.06
    p.speaker_opened(SPEAKER_RATE)
    p.mic_opened(16000, 1)
    listener = Listener()
    p.listener = listener
    rng = np.random.default_rng(3)
    p.play("item_1", (rng.standard_normal(SPEAKER_RATE * 4) * 3000).astype("<i2").tobytes())
    p.finish()
    pcm = word.astype("<i2").tobytes()
    frames = [bytes(MIC)] * 25 + [pcm[i:i + MIC].ljust(MIC, b"\0") for i in range(0, len(pcm), MIC)] + [bytes(MIC)] * 40
    for frame in frames:
        p.read(PERIOD)
        p.on_mic(frame)
    return listener.barge_ins > 0


def main() -> None:
    print(__doc__.split("\n\n")[0])
    print("ONLY PART OF THE PATH: direct calls, no echo, no canceller, no real-time stack (see the docstring)\n")
    print(f"{'word':10} {'voice':6} {'ms':>5}  {'with the hold':14} naive (no hold)   (ms: the word, >300 of 32767)")
    held = naive = n = 0
    for text in WORDS:
        for voice in VOICES:
            word = flite16(text, voice)
            ours, base = stopped(word, hold=True), stopped(word, hold=False)
            held += ours
            naive += base
            n += 1
            ms = (len(word) - 1600) * 1000 // 16000
            print(f"{text!r:10} {voice:6} {ms:5d}  {'stopped' if ours else 'PLAYED ON':14} "
                  f"{'stopped' if base else 'played on'}")
    print(f"\nstopped the reply: with the hold {held} of {n}; naive baseline {naive} of {n}")


if __name__ == "__main__":
    main()
