"""Short words said over a reply, through the real-time stack with the echo path open, for
bench/realtime_bench.py (scenario ``words``).

A person who says "no" or "stop" over the device wants it to stop. The talk-over hold
(device/audio/bargehold.py) silences the speaker at once, then confirms the barge-in only on
speech after its settle; a word whose loud part falls inside the settle is dismissed and the
reply plays on. bench/short_words_bench.py measures that rule by direct calls (no echo, no
canceller); this measures it as a user meets it: flite words played into the microphone in real
time, at the level the reply's echo reaches it, while the echo comes back.

Per word, from the daemon's status counters: stopped (a voice barge-in), held and dismissed (the
reply went on), or unheard (neither). Each trial asks for a long reply, says the word 0.5 s
into it, waits 1.5 s for the verdict, then ends the conversation (`new_conversation`), so the
next trial starts from a quiet speaker.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
from rtaudio import RATE, active_rms, clip48, first_word, into_reply, play, wait_quiet, write_wav
from rtwake import flite48, status

WORDS = ("no", "stop", "wait", "hey", "stop it", "hold on")
VOICES = ("slt", "rms")


def _word(text: str, voice: str) -> np.ndarray:
    """The word, from 50 ms before its first loud frame to its end."""
    x = flite48(text, voice)
    return x[max(0, first_word(x) - RATE // 20):]


def _counts(d: Any) -> tuple[int, int]:
    s = status(d)
    return int(s.get("voice_barge_ins", 0)), int(s.get("talk_over_dismissed", 0))


def short_words(d: Any, pulse: Any, loop: str, db: float, gain_db: float, tmp: Path, spk: Any) -> dict:
    """Each word of WORDS in each voice of VOICES over a long reply, at the level of its echo."""
    from device import control

    out: dict[str, Any] = {"stopped": [], "dismissed": [], "unheard": [], "no_reply": 0}
    question = write_wav(tmp / "words-question.wav", clip48("numbers.raw"))
    pulse.echo_gain(loop, db)
    try:
        for text in WORDS:
            for voice in VOICES:
                name = f"{text!r}/{voice}"
                barges, dismissed = _counts(d)
                echo = into_reply(pulse, spk, question, gain_db)
                if echo is None:
                    out["no_reply"] += 1
                else:
                    word = _word(text, voice)
                    word *= echo / max(active_rms(word), 1.0)
                    play(pulse, "micfeed", write_wav(tmp / "word.wav", word)).wait()
                    time.sleep(1.5)                               # the hold's verdict, and more
                    barges2, dismissed2 = _counts(d)
                    # a word held and dismissed whose resumed reply was then cut by something else
                    # is still a dismissed word: the hold's verdict is counted first
                    key = "dismissed" if dismissed2 > dismissed else "stopped" if barges2 > barges else "unheard"
                    out[key].append(name)
                # the reply (or a late one, or the answer to the word) ends before the next trial
                control.request(str(d.socket), {"cmd": "new_conversation"})
                wait_quiet(spk)
    finally:
        pulse.echo_gain(loop, None)
    return out


def describe(r: dict) -> str:
    n = len(r["stopped"]) + len(r["dismissed"]) + len(r["unheard"])
    text = (f"short words over the reply at its echo's level: {len(r['stopped'])} of {n} stopped it; "
            f"held and dismissed (it played on) {len(r['dismissed'])}: {', '.join(r['dismissed']) or '-'}; "
            f"unheard {len(r['unheard'])}: {', '.join(r['unheard']) or '-'}")
    return text + (f"; {r['no_reply']} trials without a reply" if r["no_reply"] else "")
