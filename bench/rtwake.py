"""The wake word through the real-time stack, for bench/realtime_bench.py (scenario ``wake``).

Positives: flite saying "hey jarvis, what time is it" (the question right after the word, no
pause) in four voices at three speeds, played into the microphone in real time; a detection is a
"wake" event from the daemon within 3 s, and the turn that follows is counted (the words right
after the word were not lost). Negatives: real human speech without the word (pocketsphinx-
testdata: librivox, cards, goforward, numbers) and flite sentences, some near misses: wake
events are false accepts (per hour of that speech), and the bytes the daemon sent upstream
while it played are what a room without the word costs (goal 0). Any variant without a wake
word is the naive baseline of the same run: it sends whatever it hears.
"""

from __future__ import annotations

import subprocess
import tempfile
import time
import wave
from pathlib import Path
from typing import Any

import numpy as np
import soxr
from rtaudio import CLIPS, RATE, play, write_wav

VOICES = ("slt", "awb", "rms", "kal16")
STRETCH = (0.9, 1.0, 1.15)
SENTENCES = ("hey travis, turn it off", "hey marvin, what time is it", "the harvest was good this year",
             "they are jars of jam", "turn the lights off in the kitchen", "what is the weather tomorrow")


def flite48(text: str, voice: str, stretch: float = 1.0) -> np.ndarray:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "x.wav"
        subprocess.run(["flite", "-voice", voice, "--setf", f"duration_stretch={stretch}", "-t", text,
                        "-o", str(out)], check=True)
        with wave.open(str(out)) as w:
            x = np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float32)
            return soxr.resample(x, w.getframerate(), RATE)


def negatives() -> np.ndarray:
    """About 75 s of speech without the wake word, 0.7 s apart."""
    parts = []
    for name in ("goforward.raw", "numbers.raw", "something.raw"):
        parts.append(soxr.resample(np.frombuffer((CLIPS / name).read_bytes(), "<i2").astype(np.float32), 16000, RATE))
    for path in sorted(CLIPS.glob("librivox/*.wav")) + sorted(CLIPS.glob("cards/*.wav")):
        with wave.open(str(path)) as w:
            x = np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float32)
            parts.append(soxr.resample(x, w.getframerate(), RATE))
    parts += [flite48(text, voice) for text in SENTENCES for voice in ("slt", "rms")]
    gap = np.zeros(int(0.7 * RATE), np.float32)
    return np.concatenate([x for part in parts for x in (part, gap)])


def status(daemon: Any) -> dict:
    from device import control

    return control.request(str(daemon.socket), {"cmd": "status"})


def bytes_up(daemon: Any) -> int:
    return int(status(daemon).get("audio_bytes_up", 0))


def erle_between(before: dict | None, after: dict | None) -> float | None:
    """ERLE (dB) of the daemon's canceller over a window, from its status counters."""
    if not before or not after:
        return None
    e_in = after["energy_in"] - before["energy_in"]
    e_out = after["energy_out"] - before["energy_out"]
    return 10 * np.log10(e_in / e_out) if e_in > 0 and e_out > 0 else None


def room_without_the_word(daemon: Any, pulse: Any, tmp: Path, speech: np.ndarray) -> dict:
    """Speech without the word, in real time: wake events and the bytes sent meanwhile."""
    before, start = bytes_up(daemon), time.monotonic()
    play(pulse, "micfeed", write_wav(tmp / "negatives.wav", speech)).wait()
    time.sleep(2.0)
    return {"seconds": len(speech) / RATE, "false_accepts": len(daemon.since(start, "wake")),
            "bytes_up": bytes_up(daemon) - before, "turns": len(daemon.since(start, "turn"))}


def wake_words(daemon: Any, pulse: Any, tmp: Path, spk: Any, wait_quiet: Any) -> dict:
    """Each voice and speed once: detected (a wake event) and followed by a turn."""
    detected = turns = 0
    trials = [(v, s) for v in VOICES for s in STRETCH]
    for i, (voice, stretch) in enumerate(trials):
        clip = flite48("hey jarvis, what time is it", voice, stretch)
        start = time.monotonic()
        play(pulse, "micfeed", write_wav(tmp / f"wake{i}.wav", clip)).wait()
        deadline = time.monotonic() + 3.0
        while not daemon.since(start, "wake") and time.monotonic() < deadline:
            time.sleep(0.05)
        heard = bool(daemon.since(start, "wake"))
        detected += heard
        if heard:
            deadline = time.monotonic() + 6.0
            while not daemon.since(start, "turn") and time.monotonic() < deadline:
                time.sleep(0.05)
            turns += bool(daemon.since(start, "turn"))
        time.sleep(1.0)
        wait_quiet(spk, 1.0, 15.0)    # the reply, if any, is over; the follow-up window too (0 s)
    return {"detected": detected, "n": len(trials), "turns": turns}
