"""What playing a reply costs at the speaker: pivoice's 40 ms periods against the 20 ms periods
it wrote before (the naive baseline), alternated in the same run.

The real path: hardware.audio.Speaker (its writer thread, PyAudio, PortAudio, ALSA's PulseAudio
plugin and that plugin's client thread) into a private PulseAudio null sink in real time, as
`bench/realtime_bench.py` runs the daemon. Only the speaker's part of the process is running
(no microphone, no event loop work): CPU of the whole process from /proc schedstat (ns), while
it plays a continuous tone.

    .venv/bin/python bench/speaker_bench.py [--seconds 8] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(Path(__file__).parent)]

from rtaudio import RATE, Pulse  # noqa: E402


def process_ns() -> int:
    total = 0
    for tid in os.listdir("/proc/self/task"):
        try:
            total += int(Path(f"/proc/self/task/{tid}/schedstat").read_text().split()[0])
        except FileNotFoundError:
            pass   # a thread that ended meanwhile
    return total


def measure(period_ms: int, quiet_ms: int, seconds: float) -> tuple[float, int]:
    """% of a core while playing; wake-ups of the writer thread per second (reads)."""
    from hardware.audio import Speaker

    tone = (np.sin(np.arange(RATE * 60) * 2 * np.pi * 440 / RATE) * 3000).astype("<i2").tobytes()
    where = [0]
    reads = [0]

    def read(nbytes: int) -> bytes:
        reads[0] += 1
        out = tone[where[0]:where[0] + nbytes]
        where[0] += len(out)
        return out

    speaker = Speaker("default", read, preferred_rate=RATE, period_ms=period_ms, quiet_ms=quiet_ms)
    speaker.open()
    try:
        time.sleep(1.0)
        before, at, r0 = process_ns(), time.monotonic(), reads[0]
        time.sleep(seconds)
        spent, took, n = process_ns() - before, time.monotonic() - at, reads[0] - r0
    finally:
        speaker.close()
    return 100 * spent / 1e9 / took, round(n / took)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    pulse = Pulse(Path(tempfile.mkdtemp(prefix="pivoice-spk-")) / "pulse")
    os.environ.update(pulse.env)
    try:
        runs: dict[str, list[float]] = {"naive": [], "pivoice": []}
        print("speaker playing a reply through PulseAudio (writer thread + PortAudio + the plugin's client thread;")
        print("the speaker's part of the process only), % of one core of this machine (x10: Pi Zero 2 W)")
        for _ in range(args.rounds):
            for name, (period, quiet) in (("naive", (20, 20)), ("pivoice", (40, 20))):
                percent, reads = measure(period, quiet, args.seconds)
                runs[name].append(percent)
                print(f"  {name:8s} {period} ms periods: {percent:.2f} % ({reads} writes/s)")
        naive, ours = np.mean(runs["naive"]), np.mean(runs["pivoice"])
        print(f"mean: naive {naive:.2f} %, pivoice {ours:.2f} % ({naive - ours:.2f} points less; "
              f"Pi Zero 2 W ~{10 * (naive - ours):.0f} points of its core)")
    finally:
        pulse.close()


if __name__ == "__main__":
    main()
