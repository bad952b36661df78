"""The simulator side of the soak (bench/soak_bench.py): the built-in Realtime simulator in a
child process of its own, so the memory the soak measures is the device's alone and the two
share the cores as a device and a server would. Driven by lines on stdin: ``drop`` (cut every
link, ``RealtimeSimulator.drop_all``), ``stats`` (what the server heard and said, as JSON),
``quit``.

    python bench/soak_server.py LIMIT_S SPEEDUP SEED     (started by the soak, not by hand)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from device.simulator.server import RealtimeSimulator, SimulatorOptions  # noqa: E402

CLIPS = Path("/usr/share/pocketsphinx/test/data")
CLIP_NAMES = ("goforward.raw", "numbers.raw", "something.raw")


def rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


class Ledger:
    """What the server heard and said, kept across sessions; finished sessions are summed up
    and dropped from the simulator, so the child's memory stays bounded too."""

    def __init__(self) -> None:
        self.user_audio: dict[str, str] = {}        # item id -> transcript ("" none yet)
        self.user_text: dict[str, str] = {}
        self.assistant: dict[str, tuple[str, int]] = {}   # item id -> (transcript, audio ms)
        self.counts: dict[str, dict[str, int]] = {}       # session id -> response counts

    def harvest(self, sim: RealtimeSimulator) -> None:
        for session in sim.stats.sessions:
            self.counts[session.session["id"]] = dict(session.counts)
            for item in session.items:
                self._record(item, session)
        del sim.stats.sessions[:-3]   # at most two are live (the old and the next, at a rotation)

    def _record(self, item: dict[str, Any], session: Any) -> None:
        item_id = item.get("id") or ""
        if item_id.startswith("carry_") or item.get("type") != "message":
            return   # the device's carry-over replays earlier turns: not new turns
        parts = item.get("content") or []
        text = " ".join(p.get("text") or p.get("transcript") or "" for p in parts).strip()
        if item.get("role") == "user":
            audio = any(p.get("type") == "input_audio" for p in parts)
            (self.user_audio if audio else self.user_text)[item_id] = text
        elif item.get("role") == "assistant":
            self.assistant[item_id] = (text, len(session.audio_of.get(item_id) or b"") // 48)

    def summary(self, sim: RealtimeSimulator) -> dict[str, Any]:
        return {"connections": sim.stats.connections, "expired": sim.stats.expired,
                "sessions": len(self.counts),
                "responses": sum(c.get("responses", 0) for c in self.counts.values()),
                "cancelled": sum(c.get("cancelled", 0) for c in self.counts.values()),
                "user_audio": list(self.user_audio.values()), "user_text": list(self.user_text.values()),
                "assistant_audio": [t for t, ms in self.assistant.values() if ms > 0],
                "assistant_text_only": sum(1 for _, ms in self.assistant.values() if ms == 0),
                "rss_kb": rss_kb()}


class ClipTranscriber:
    """The simulator's speech-to-text, compressed like everything else. pocketsphinx takes
    0.3 to 1.4 s of real time per clip on a busy machine: 5 to 20 s of simulated time at 16x,
    a server thinking for longer than the whole rotation window of a compressed session. So
    each clip is transcribed for real once, up front; a segment the server's VAD cut that holds
    the clip sample for sample (normalised cross-correlation >= ``MATCH``: the audio came through
    the device whole) gets that transcript at once; anything else is transcribed for real."""

    MATCH = 0.95

    def __init__(self, real: Any) -> None:
        import numpy as np
        import soxr

        self.real, self.np = real, np
        self.refs: list[tuple[Any, str]] = []
        for name in CLIP_NAMES:
            samples = np.frombuffer((CLIPS / name).read_bytes(), "<i2").astype(np.float32)
            ref = np.clip(soxr.resample(samples, 16000, 24000), -32768, 32767).astype("<i2")
            self.refs.append((self.speech(ref.astype(np.float64)), real(ref.tobytes()) or ""))
        self.matched = self.transcribed = 0
        self.real_s: list[float] = []

    def speech(self, ref: Any, frame: int = 480, floor_db: float = -45.0) -> Any:
        """The clip from its first to its last loud 20 ms frame: the device sends speech with
        a little pre-roll, not the silence a recording starts with."""
        np = self.np
        n = len(ref) // frame
        levels = 20 * np.log10(np.sqrt((ref[: n * frame].reshape(n, frame) ** 2).mean(axis=1)) / 32768 + 1e-9)
        loud = np.flatnonzero(levels > floor_db)
        return ref[loud[0] * frame: (loud[-1] + 1) * frame] if len(loud) else ref

    def score(self, x: Any, ref: Any) -> float:
        np = self.np
        if len(x) < len(ref):
            return 0.0
        n = 1 << int(len(x) + len(ref)).bit_length()
        corr = np.fft.irfft(np.fft.rfft(x, n) * np.conj(np.fft.rfft(ref, n)), n)[: len(x) - len(ref) + 1]
        energy = np.concatenate(([0.0], np.cumsum(x * x)))
        window = np.sqrt(np.maximum(energy[len(ref):] - energy[: len(x) - len(ref) + 1], 1e-9))
        return float(np.max(corr / (window * np.sqrt(np.sum(ref * ref)))))

    def __call__(self, pcm24: bytes) -> str | None:
        x = self.np.frombuffer(pcm24, "<i2").astype(self.np.float64)
        for ref, text in self.refs:
            if self.score(x, ref) >= self.MATCH:
                self.matched += 1
                return text
        self.transcribed += 1
        start = time.monotonic()
        try:
            return self.real(pcm24)
        finally:
            self.real_s.append(time.monotonic() - start)


async def simulator_child(limit_s: float, speedup: float, seed: int) -> None:
    """The child process: a simulator, driven by lines on stdin (drop, stats, quit)."""
    from device.simulator import replies

    logging.basicConfig(level=logging.ERROR)
    stt = replies.transcribe = ClipTranscriber(replies.transcribe)
    sim = await RealtimeSimulator(SimulatorOptions(session_limit_s=limit_s, speedup=speedup, ping_interval_s=None,
                                                   seed=seed, http_port=None)).start()
    print(json.dumps({"url": sim.url}), flush=True)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    ledger = Ledger()
    while line := (await reader.readline()).decode().strip():
        if line == "drop":
            await sim.drop_all()
            print("{}", flush=True)
        elif line == "stats":
            ledger.harvest(sim)
            print(json.dumps({**ledger.summary(sim), "stt_matched": stt.matched, "stt_real": stt.transcribed,
                              "stt_real_s": stt.real_s, "stt_refs": [t for _, t in stt.refs]}), flush=True)
        elif line == "quit":
            break
    await sim.stop()


class SimProcess:
    """The parent's handle on the child simulator."""

    async def start(self, limit_s: float, speedup: float, seed: int, log: str) -> SimProcess:
        self.log = log
        with Path(log).open("wb") as err:  # noqa: ASYNC230 - once, before the child starts
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, __file__, str(limit_s), str(speedup), str(seed),
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=err, cwd=ROOT)
        self.url = json.loads(await asyncio.wait_for(self.proc.stdout.readline(), 120))["url"]
        self._lock = asyncio.Lock()
        return self

    async def ask(self, command: str) -> dict[str, Any]:
        async with self._lock:
            self.proc.stdin.write(command.encode() + b"\n")
            await self.proc.stdin.drain()
            return json.loads(await asyncio.wait_for(self.proc.stdout.readline(), 30))

    async def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.proc.stdin.write(b"quit\n")
            await self.proc.stdin.drain()
        try:
            await asyncio.wait_for(self.proc.wait(), 10)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()


if __name__ == "__main__":
    asyncio.run(simulator_child(float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])))
