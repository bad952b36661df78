"""The microphone's idle period: CPU of a silent room against how late a turn's end reaches the
server, for `[audio] idle_period_ms` values side by side.

    PYTHONPATH=. .venv/bin/python bench/idle_period_bench.py [--periods 100,150,200] [--rounds 4]

Each value runs as its own `pivoice run` (echo canceller on, as by default) on its own private
PulseAudio, all at the same time, against one simulator on loopback, so a window measures every
value on the same machine at the same moment (this machine's speed varies from day to day by
more than the difference measured here). The first value is the baseline: 100 ms, the period
before 150 became the default. Figures: % of one core over each 15 s window, from the kernel's
per-thread run time (/proc/PID/task/*/schedstat, nanoseconds), connected and silent, after the
device has gone idle. The cost of a longer period is not measured here: a turn keeps the
period it began with, so the end of a person's speech reaches the server half a period late on
average (the arithmetic, printed beside the figures; the simulator's own reply time varies by
more than that).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).parent)]

from realtime_bench import PIVOICE, ROOT, Daemon  # noqa: E402
from rtaudio import Pulse, evict_libraries, free_port  # noqa: E402


def run_ns(pid: int) -> int:
    """Nanoseconds every thread of `pid` has run."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except OSError:
            pass        # a thread that ended meanwhile
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--periods", default="100,150,200", help="idle_period_ms values; the first is the baseline")
    parser.add_argument("--rounds", type=int, default=4, help="15 s windows")
    args = parser.parse_args()
    periods = [int(p) for p in args.periods.split(",")]
    tmp = Path(tempfile.mkdtemp(prefix="pivoice-idle-"))
    evict_libraries()
    port = free_port()
    sim = subprocess.Popen([*PIVOICE, "simulator", "--port", str(port)], cwd=ROOT,
                           env={**os.environ, "PYTHONPATH": str(ROOT)},
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    pulses: list[Pulse] = []
    daemons: list[Daemon] = []     # one per value, in order (a value twice: how far two equal daemons differ)
    try:
        time.sleep(1.0)
        for i, period in enumerate(periods):
            pulses.append(Pulse(tmp / f"pulse{i}"))
            daemons.append(Daemon(tmp, pulses[-1], f"ws://127.0.0.1:{port}/v1/realtime",
                                  {"echo_cancel": "webrtc", "idle_period_ms": period}, f"idle{i}-{period}"))
        time.sleep(7.0)      # past the pipeline's IDLE_AFTER_S: the silent room's period
        figures: list[list[float]] = [[] for _ in periods]
        for _ in range(args.rounds):
            before = [run_ns(d.proc.pid) for d in daemons]
            start = time.monotonic()
            time.sleep(15.0)
            elapsed = time.monotonic() - start
            for i, d in enumerate(daemons):
                figures[i].append(100 * (run_ns(d.proc.pid) - before[i]) / 1e9 / elapsed)
            print("  window: " + ", ".join(f"{p} ms {f[-1]:.2f} %" for p, f in zip(periods, figures)), flush=True)
        base = sum(figures[0]) / args.rounds
        print(f"connected and silent, the whole daemon, % of one core (Pi Zero 2 W ~x10), mean of {args.rounds} "
              f"windows of 15 s, side by side; baseline {periods[0]} ms:")
        for p, f in zip(periods, figures):
            mean = sum(f) / args.rounds
            print(f"  idle_period_ms = {p:4d}: {mean:.2f} % ({mean - base:+.2f} against the baseline); "
                  f"a turn's end reaches the server {p / 2:.0f} ms late on average (arithmetic, not measured)")
    finally:
        for d in daemons:
            d.stop()
        sim.terminate()
        sim.wait(5)
        for pulse in pulses:
            pulse.close()
    print(f"(logs and configs in {tmp})")


if __name__ == "__main__":
    main()
