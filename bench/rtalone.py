"""CPU of the daemon with nothing of the bench's on its PulseAudio but the speech it plays, for
bench/realtime_bench.py (scenario ``cpu``): the device as it runs in a room.

The bench's own instruments change what PulseAudio does for the daemon. Its recorders (parec at
10 ms) and its echo path (module-loopback, speaker.monitor -> micfeed at 40 ms) ask PulseAudio
for short latencies; a source hands every client what it captures in blocks of the shortest
latency any of its clients asked for, so with them the daemon's microphone arrives in ~5 ms
blocks, and the PulseAudio plugin's thread in the daemon wakes ~240 times a second instead of
~30 (measured on this bench, connected and silent). A room's echo is acoustic and nobody
records the device's microphone beside it; on a Pi the daemon is the microphone's only client.
So the bench measures CPU twice: here, before any echo path or recorder exists (the question is
played with 200 ms of latency, so it forces nothing either; the daemon's events stream, which
the bench reads to count replies, is the one instrument left), and later with them all (the
figures beside self-interruptions).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from rtaudio import CpuMeter, Pulse, clip48, play, thread_cpu, write_wav

#: how long a silent room is measured, and how many conversations
IDLE_S = 15.0
ROUNDS = 3


def _measured(pid: int, seconds: float, during: Any = None) -> tuple[float, list[tuple[str, float, float]]]:
    """% of a core over `seconds` (whole process), and per thread; `during` runs meanwhile."""
    rows: list[tuple[str, float, float]] = []
    worker = threading.Thread(target=lambda: rows.extend(thread_cpu(pid, seconds)), daemon=True)
    cpu = CpuMeter(pid)
    cpu.start()
    worker.start()
    if during:
        during()
    worker.join()
    return cpu.percent(), rows


def _threads(rows: list[tuple[str, float, float]]) -> str:
    return ", ".join(f"{name.split(' [')[0]} {percent:.2f} % {wakeups:.0f}/s"
                     for name, percent, wakeups in rows if percent > 0.01 or wakeups > 3)


def measure(d: Any, pulse: Pulse, tmp: Path, window: float, spoken: Any = None) -> dict:
    """Connected and silent, then ROUNDS conversations (a 2 s question, or `spoken`: 48 kHz
    samples, the wake word and that question; `window` s in all)."""
    time.sleep(6.5)   # past the pipeline's IDLE_AFTER_S: the steady state of a silent room
    idle, idle_rows = _measured(d.proc.pid, IDLE_S)
    rss = CpuMeter(d.proc.pid).rss()
    question = write_wav(tmp / "question-alone.wav", clip48("goforward.raw") if spoken is None else spoken)
    talks = []
    for _ in range(ROUNDS):
        start = time.monotonic()
        percent, rows = _measured(d.proc.pid, window, lambda: play(pulse, "micfeed", question, 200).wait())
        talks.append((percent, rows, bool(d.since(start, "first_delta"))))
        time.sleep(6.0)   # the reply's end, and the speaker's stream stopped again
    # again after the conversations: what a reply touches (AEC3's code and state, the speaker's
    # stream) is resident from the first reply on
    return {"idle": idle, "idle_rows": idle_rows, "talks": talks, "rss": rss, "rss_after": CpuMeter(d.proc.pid).rss()}


def report(name: str, r: dict) -> None:
    talks = r["talks"]
    mean = sum(t[0] for t in talks) / len(talks)
    answered = sum(1 for t in talks if t[2])
    print(f"  [{name}] the device alone: connected, silent {r['idle']:.2f} % of a core (Pi Zero 2 W "
          f"~{10 * r['idle']:.0f} %), {r['rss']} (after the conversations: {r['rss_after']}); in conversation {' / '.join(f'{t[0]:.2f}' for t in talks)} % "
          f"(mean {mean:.2f}; Pi Zero 2 W ~{10 * mean:.0f} %; {answered} of {len(talks)} questions answered)")
    print(f"      per thread, silent: {_threads(r['idle_rows'])}")
    print(f"      per thread, the last conversation: {_threads(talks[-1][1])}")
