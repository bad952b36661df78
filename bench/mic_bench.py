"""What the microphone costs: pivoice's reader (blocking reads on a thread of its own, a stream
read only once a period is waiting in it, a reopen at each change of period) against the
PortAudio callback stream it used before (the naive baseline), each in a fresh process.

The real path: hardware.microphone.Microphone (PyAudio, PortAudio, ALSA's PulseAudio plugin and
that plugin's client thread) from a private PulseAudio (bench/rtaudio.py) whose microphone is
fed in real time, handing each period to an asyncio loop as the daemon does. Only the
microphone's part of the process runs. CPU of the whole process (threads that ended included)
and its context switches per second, in four phases: the first 2.5 s of the process's first
stream, 50 ms periods (a conversation), the 1 s after a change to 100 ms periods (a reopen),
100 ms periods (a silent room).

    .venv/bin/python bench/mic_bench.py [--seconds 5] [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(Path(__file__).parent)]

from rtaudio import RATE, Pulse  # noqa: E402

PHASES = ("first stream (2.5 s)", "50 ms periods", "reopen at 100 ms (1 s)", "100 ms periods")


def switches() -> int:
    total = 0
    for tid in os.listdir("/proc/self/task"):
        try:
            status = Path(f"/proc/self/task/{tid}/status").read_text()
        except FileNotFoundError:
            continue
        total += sum(int(line.split()[1]) for line in status.splitlines() if "ctxt_switches" in line)
    return total


class CallbackMic:
    """The naive baseline: what the device did before, a PortAudio callback stream reopened at
    each change of period."""

    def __init__(self, on_audio, period_ms: int) -> None:
        import pyaudio

        self.on_audio, self.loop = on_audio, asyncio.get_running_loop()
        self.pa, self.period_ms = pyaudio.PyAudio(), period_ms
        self.stream = self._open()

    def _open(self):
        import pyaudio

        def callback(data, frames, info, status):
            self.loop.call_soon_threadsafe(self.on_audio, bytes(data), False)
            return None, pyaudio.paContinue
        return self.pa.open(format=pyaudio.paInt16, channels=1, rate=RATE, input=True,
                            frames_per_buffer=RATE * self.period_ms // 1000, stream_callback=callback)

    def set_period(self, period_ms: int) -> None:
        self.stream.stop_stream()
        self.stream.close()
        self.period_ms = period_ms
        self.stream = self._open()

    def close(self) -> None:
        self.stream.stop_stream()
        self.stream.close()
        self.pa.terminate()


async def child(kind: str, seconds: float) -> dict[str, list[float]]:
    from hardware.bridge import LoopBridge
    from hardware.microphone import Microphone

    got = [0]

    def on_audio(pcm: bytes, gap: int) -> None:
        got[0] += len(pcm)

    results: dict[str, list[float]] = {}

    async def phase(name: str, length: float) -> None:
        cpu, sw, t = time.process_time(), switches(), time.monotonic()
        await asyncio.sleep(length)
        dt = time.monotonic() - t
        results[name] = [100 * (time.process_time() - cpu) / dt, (switches() - sw) / dt]

    if kind == "pivoice":
        mic = Microphone("default", on_audio, bridge=LoopBridge(), period_ms=50, preferred_rate=RATE, channels=1)
        cpu, sw, t = time.process_time(), switches(), time.monotonic()
        mic.open()
    else:
        cpu, sw, t = time.process_time(), switches(), time.monotonic()
        mic = CallbackMic(on_audio, 50)
    await asyncio.sleep(2.5 - (time.monotonic() - t))
    dt = time.monotonic() - t
    results[PHASES[0]] = [100 * (time.process_time() - cpu) / dt, (switches() - sw) / dt]
    await phase(PHASES[1], seconds)
    cpu, sw, t = time.process_time(), switches(), time.monotonic()
    mic.set_period(100)
    await asyncio.sleep(1.0)
    dt = time.monotonic() - t
    results[PHASES[2]] = [100 * (time.process_time() - cpu) / dt, (switches() - sw) / dt]
    await phase(PHASES[3], seconds)
    mic.close()
    results["audio s per s"] = [got[0] / 2 / RATE / (2.5 + 2 * seconds + 1.0), 0.0]
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--child", choices=("pivoice", "naive"))
    args = ap.parse_args()
    if args.child:
        print(json.dumps(asyncio.run(child(args.child, args.seconds))))
        return
    pulse = Pulse(Path(tempfile.mkdtemp(prefix="micbench-")) / "pulse")
    feeder = subprocess.Popen(["paplay", "--device=micfeed", "--raw", f"--rate={RATE}", "--channels=1",
                               "--format=s16le", "/dev/zero"], env={**os.environ, **pulse.env})
    rows: dict[str, dict[str, list[list[float]]]] = {"pivoice": {}, "naive": {}}
    try:
        for _ in range(args.rounds):
            for kind in ("naive", "pivoice"):
                out = subprocess.run([sys.executable, __file__, "--child", kind, "--seconds", str(args.seconds)],
                                     env={**os.environ, **pulse.env, "PYTHONPATH": str(ROOT)},
                                     capture_output=True, text=True, check=True).stdout
                for name, value in json.loads(out.strip().splitlines()[-1]).items():
                    rows[kind].setdefault(name, []).append(value)
    finally:
        feeder.kill()
        pulse.close()
    print("microphone alone through PulseAudio (ALSA `default`), % of one core (Pi Zero 2 W ~x10) "
          "and context switches/s; naive = the PortAudio callback stream, reopened at each change")
    print(f"  {'':26s} {'pivoice':>26s} {'naive':>26s}")
    for name in (*PHASES, "audio s per s"):
        cells = []
        for kind in ("pivoice", "naive"):
            values = rows[kind][name]
            cpu = sum(v[0] for v in values) / len(values)
            sw = sum(v[1] for v in values) / len(values)
            runs = "/".join(f"{v[0]:.2f}" for v in values)
            rate = f"{sw:.0f}/s" if sw >= 0 else "threads ended"   # a reopen: the old stream's threads
            cells.append(f"{runs} ({rate})" if name != "audio s per s" else f"{cpu:.2f}")
        print(f"  {name:26s} {cells[0]:>26s} {cells[1]:>26s}")


if __name__ == "__main__":
    main()
