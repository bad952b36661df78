"""A compressed soak of the whole daemon (issue 17): many short sessions, speech, drops.

    .venv/bin/python bench/soak_bench.py [--rotations 100] [--max-seconds 420] [--speed 16]

The real :class:`device.app.App` on simulated hardware (SimMicrophone, SimSpeaker, gpiozero's
MockFactory) against the built-in Realtime simulator over a real WebSocket on loopback. The
simulator runs in a child process (``bench/soak_server.py``), so the resident memory measured
here is the device's alone and the two share the machine's cores as a device and a server would.

Time is compressed ``--speed`` times: sessions of ``--session-s`` (30 s) simulated, the
microphone, the speaker and the simulator's replies all run that much faster, and the
manager's own times (rotation margin, backoff, "healthy") are scaled alike. Turns follow one
another with a random pause: a pocketsphinx test clip spoken through the simulated microphone,
or a ``say`` through ``app.controls.say``; every 8th turn the person talks over the reply
(a barge-in). Every ``--drop-every-s`` simulated seconds the link is cut
(``RealtimeSimulator.drop_all``), in the pause between turns, and the next turn is spoken at
once (while the device reconnects).

Figures: sessions, rotations, reconnects, turns spoken against turns the server heard
(transcripts) and answered, replies, barge-ins, errors; resident memory sampled over time with
its slope per 100 rotations; the counters that could grow (outbox, history, playback buffer,
bus subscribers, tasks, file descriptors, threads). The naive baseline, in the same run: the
same load with proactive rotation off (``rotate_margin_s=0``: reconnect when the server ends
the session), counting the turns it loses.

Exit status: 0 when no turn was lost and memory stayed flat (the mean of the last third of the
samples after warm-up within ``--rss-bound-mb`` of the first third's); 1 otherwise; 2 when the
soak did not reach its rotations within ``--max-seconds`` or the device did not stop.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import os
import random
import sys
import tempfile
import threading
import time
import tracemalloc
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gpiozero.pins.mock import MockFactory, MockPWMPin  # noqa: E402

from device import config as cfg  # noqa: E402
from device.app import App, Hardware  # noqa: E402
from device.bus import BusEvent  # noqa: E402
from device.realtime.manager import Options  # noqa: E402
from device.state import DeviceState  # noqa: E402
from hardware.leds import SimLeds  # noqa: E402
from hardware.sim import SimMicrophone, SimSpeaker  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from soak_report import print_memory, print_run, print_tracemalloc  # noqa: E402
from soak_server import CLIP_NAMES, CLIPS, SimProcess, rss_kb  # noqa: E402

BARGE_EVERY = 8


# ================================================================================ the device
@dataclass
class Run:
    """One soak: the device, its simulator, what the driver did and what was seen."""

    name: str
    app: App
    sim: SimProcess
    speed: float
    seen: Counter = field(default_factory=Counter)
    errors: Counter = field(default_factory=Counter)
    turns: list[dict[str, Any]] = field(default_factory=list)
    samples: list[dict[str, Any]] = field(default_factory=list)
    drops: int = 0
    say_refused: int = 0
    current: dict[str, Any] | None = None
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    started: float = field(default_factory=time.monotonic)
    elapsed: float = 0.0
    final: dict[str, Any] = field(default_factory=dict)
    hung: bool = False
    warm_rotations: int = 0                 # tracemalloc's first snapshot is taken here
    snapshot: Any = None

    def sim_s(self) -> float:
        return (time.monotonic() - self.started) * self.speed


def scaled_options(speed: float, session_s: float, *, proactive: bool) -> Options:
    """The manager's times, compressed like everything else (the defaults of a real device / speed)."""
    return Options(session_limit_s=session_s / speed, rotate_margin_s=(60.0 / speed) if proactive else 0.0,
                   carry_turns=6, fatal_retry_s=600.0 / speed, backoff_base_s=0.5 / speed,
                   backoff_cap_s=30.0 / speed, open_timeout_s=10.0, ping_interval_s=None, healthy_s=5.0 / speed)


def build_app(url: str, tmp: str, speed: float, options: Options, name: str) -> App:
    config = cfg.parse({"realtime": {"url": url}, "audio": {"backend": "simulated"},
                        "gpio": {"pin_factory": "mock", "button_pin": 17, "led_pins": [18]},
                        "control": {"socket": f"{tmp}/{name}.sock"}, "metrics": {"listen": "127.0.0.1:0"}})
    hardware = Hardware(
        microphone=lambda on_audio, bridge: SimMicrophone(on_audio, rate=16000, speed=speed),
        # keep_s: the twin's own record of what it played; small, it is not the device's memory
        speaker=lambda read: SimSpeaker(read, speed=speed, keep_s=1.0),
        gpio=lambda: (SimLeds(), MockFactory(pin_class=MockPWMPin), None))
    return App(config, hardware=hardware, api_key=lambda: "soak", manager_options=options)


async def record(run: Run) -> None:
    """Count what the device published; hand the current turn what concerns it."""
    sub = run.app.bus.subscribe(maxsize=10000)
    async for event in sub:
        run.seen[event.kind] += 1
        if event.kind == "error":
            run.errors[str(event.data.get("code") or event.data.get("error", ""))[:60]] += 1
        if run.current is not None:
            note(run.current, event)
        run.changed.set()


def note(turn: dict[str, Any], event: BusEvent) -> None:
    d = event.data
    detail = d.get("cause") or d.get("code") or d.get("status") or "" if event.kind in _DETAIL else ""
    if event.kind in ("reply", "heard"):
        detail = f"{detail} {str(d.get('text'))[:40]!r}"
    turn["trace"].append(f"{(event.at - turn['t0']) * 1000:.0f}ms {event.kind} {detail}".rstrip())
    if event.kind == "heard" and d.get("text"):
        turn["heard"].append(d["text"])
    elif event.kind == "response_started":
        turn["responses"].add(d.get("response_id"))
    elif event.kind == "playback_started" and d.get("response_id") in turn["responses"]:
        turn["audio_started"] = True
    elif (event.kind == "reply" and d.get("response_id") in turn["responses"] and d.get("audio")
          and d.get("status") == "completed" and turn["expect"] in d["text"]):
        turn["answered"] = d["text"]
    elif event.kind == "reply_finished" and turn.get("answered"):
        turn["finished"] = True


_DETAIL = {"link_down", "barge_in", "reply", "error", "state"}


class CountingHandler(logging.Handler):
    """Log records by level and message template: the soak prints them, the console stays quiet."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.counts: Counter = Counter()

    def emit(self, record: logging.LogRecord) -> None:
        self.counts[(record.levelname, f"{record.name}: {str(record.msg)[:70]}")] += 1


# ================================================================================ the driver
def growth_counters(app: App) -> dict[str, int]:
    """What could grow for ever in a daemon that runs for weeks."""
    playback = app.pipeline.playback
    status = app.status()
    return {"outbox": len(app.conversation.outbox), "history": len(app.history._turns),
            "playback_ms": int(playback.queued_ms()) if playback else 0,
            "playback_chunks": len(playback._chunks) if playback else 0,
            "bus_subscribers": len(app.bus._subs), "tasks": len(asyncio.all_tasks()),
            "threads": threading.active_count(), "fds": len(os.listdir("/proc/self/fd")),
            "ignored_responses": len(app.conversation._ignored), "items_tracked": len(app.conversation._received_ms),
            "tool_tasks": len(app.manager._tool_tasks), "dropped_uplink_frames": status["dropped_uplink_frames"],
            "playback_dropped_ms": status["playback_dropped_ms"]}


async def sample(run: Run, every_s: float = 1.0) -> None:
    while True:
        await asyncio.sleep(every_s)
        gc.collect()   # what stays after a collection is what a leak would be
        stats = run.app.manager.stats
        run.samples.append({"t": time.monotonic() - run.started, "rss_kb": rss_kb(), "rotations": stats.rotations,
                            "sessions": stats.connects, **growth_counters(run.app)})
        if run.snapshot is None and stats.rotations >= run.warm_rotations and tracemalloc.is_tracing():
            run.snapshot = tracemalloc.take_snapshot()


async def wait_change(run: Run, timeout: float = 0.05) -> None:
    run.changed.clear()
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout):
            await run.changed.wait()


async def say(run: Run, text: str, patience_s: float = 20.0) -> bool:
    """``app.controls.say``; while the device is reconnecting it refuses (with a reason): retry."""
    deadline = time.monotonic() + patience_s
    while (refusal := run.app.controls.say(text)) is not None:
        run.say_refused += 1
        if time.monotonic() > deadline:
            logging.getLogger("soak").error("say refused for %.0f s: %s", patience_s, refusal)
            return False
        await asyncio.sleep(0.02)
    return True


async def outcome(run: Run, turn: dict[str, Any], *, until_audio: bool, quiet_s: float = 2.0,
                  limit_s: float = 30.0) -> str:
    """How the turn ended: answered, talked over (a barge-in), or lost: the device went quiet
    (nothing pending, nothing playing, nobody talking) for ``quiet_s`` without answering it."""
    app, start, quiet_since = run.app, time.monotonic(), None
    while True:
        now = time.monotonic()
        if until_audio and turn.get("audio_started"):
            return "talked over"
        if turn.get("answered") and (turn.get("finished") or (app.manager.idle() and not app.pipeline.speaking)):
            return "answered"
        quiet = app.manager.idle() and app.mic._drained.is_set() and not turn.get("answered")
        quiet_since = (quiet_since or now) if quiet else None
        if (quiet_since is not None and now - quiet_since > quiet_s) or now - start > limit_s:
            return "lost"
        await wait_change(run)


async def take_turn(run: Run, n: int, kind: str, clip: str, *, until_audio: bool) -> str:
    app = run.app
    text = f"Say hello to soak turn {n}."
    turn: dict[str, Any] = {"n": n, "kind": kind, "clip": clip if kind == "clip" else None, "heard": [],
                            "coupling_db": app.turns.segmenter.coupling_db if app.pipeline.speaking else None,
                            "responses": set(),
                            "expect": "You said: " if kind == "clip" else f"soak turn {n}", "at_s": run.sim_s(),
                            "session": app.manager.stats.session_id, "t0": time.monotonic(), "trace": [],
                            "rotate_in_s": app.manager.status()["rotation_in_s"],
                            "deadline_in_s": app.manager.status()["deadline_in_s"]}
    run.current = turn
    run.turns.append(turn)
    if kind == "clip":
        app.mic.say((CLIPS / clip).read_bytes())
    elif not await say(run, text):
        turn["outcome"] = "lost"
        return "lost"
    turn["outcome"] = result = await outcome(run, turn, until_audio=until_audio)
    run.current = None
    if result == "lost":
        trace = " ".join(turn["trace"])
        first_down = trace[trace.find("link_down"):].split(" ")[1] if "link_down" in trace else None
        turn["cause"] = ("session expired" if first_down == "expired" else "link dropped" if first_down
                         else "forced rotation" if "barge_in rotation" in trace else "other")
        logging.getLogger("soak").error("turn %d (%s) lost: at %.0f s simulated, session %s -> %s, heard %s",
                                        n, clip if kind == "clip" else text, turn["at_s"], turn["session"],
                                        app.manager.stats.session_id, turn["heard"])
    else:
        del turn["trace"]   # kept for the lost ones only
    return result


async def drive(run: Run, args: argparse.Namespace, done: Any, deadline: float) -> None:
    """Turns with random pauses; a drop every ``drop_every_s`` (simulated) in a pause, then
    the next turn at once; every BARGE_EVERY-th turn is talked over by the next one."""
    rng = random.Random(args.seed)
    n, talk_over, next_drop = 0, False, args.drop_every_s
    while not done() and time.monotonic() < deadline:
        if talk_over:
            # Past the first 400 ms of the reply after the person's own turn has ended: there
            # the echo guard learns how loud the reply's echo is, and speech in it would be
            # taken for echo (a known limit of the guard; the simulated microphone hears no echo).
            while run.app.turns.segmenter.in_speech and run.app.pipeline.speaking:
                await asyncio.sleep(0.002)
            await asyncio.sleep(rng.uniform(0.6, 1.2) / run.speed)
        else:
            await asyncio.sleep(rng.uniform(2.0, 12.0) / run.speed)
            if run.sim_s() >= next_drop:
                next_drop += args.drop_every_s
                await run.sim.ask("drop")
                run.drops += 1
        n += 1
        kind = "clip" if talk_over or rng.random() < 0.6 else "say"
        result = await take_turn(run, n, kind, rng.choice(CLIP_NAMES), until_audio=n % BARGE_EVERY == 0)
        talk_over = result == "talked over"
    run.current = None


async def soak(args: argparse.Namespace, tmp: str, *, proactive: bool, target: int, max_s: float) -> tuple[Run, dict]:
    name = "pivoice" if proactive else "naive"
    sim = await SimProcess().start(args.session_s / args.speed, args.speed * 2, args.seed, f"{tmp}/{name}-sim.log")
    app = build_app(sim.url, tmp, args.speed, scaled_options(args.speed, args.session_s, proactive=proactive), name)
    run = Run(name, app, sim, args.speed, warm_rotations=target // 5)
    recorder = asyncio.create_task(record(run))
    task = asyncio.create_task(app.run())
    sampler: asyncio.Task | None = None
    hung = False
    try:
        while not (app.machine.state is DeviceState.IDLE and app.manager.stats.link == "up"):
            await asyncio.sleep(0.05)
        run.started = time.monotonic()
        sampler = asyncio.create_task(sample(run))
        stats = app.manager.stats
        done = (lambda: stats.rotations >= target) if proactive else (lambda: stats.expired >= target)
        await drive(run, args, done, run.started + max_s)
        run.elapsed = time.monotonic() - run.started
        run.final = {**app.manager.status(), **growth_counters(app)}
    finally:
        if sampler is not None:
            sampler.cancel()
        app.stop()
        finished, _ = await asyncio.wait({task}, timeout=10)
        if not finished:
            hung = True
            stuck = [t.get_name() for t in asyncio.all_tasks() if not t.done()]
            logging.getLogger("soak").error("the device did not stop within 10 s; tasks: %s", stuck)
            task.cancel()
        if recorder.done() and not recorder.cancelled() and recorder.exception() is not None:
            raise RuntimeError("the soak's bus recorder failed") from recorder.exception()
        recorder.cancel()
        server = await sim.ask("stats")
        await sim.stop()
        server["log"] = Counter(line.split(":", 2)[-1].strip()[:80] for line in Path(sim.log).read_text().splitlines()
                                if line.startswith(("ERROR:", "CRITICAL:")))
    run.hung = hung
    if proactive and tracemalloc.is_tracing():
        if run.snapshot is not None:
            print_tracemalloc(run.snapshot, tracemalloc.take_snapshot())
        tracemalloc.stop()
    return run, server


# ================================================================================ the figures
async def amain(args: argparse.Namespace, logs: CountingHandler) -> int:
    start = time.monotonic()
    print(f"soak: sessions of {args.session_s:g} s simulated, time compressed {args.speed:g}x, a link drop every "
          f"{args.drop_every_s:g} s simulated, clips {', '.join(CLIP_NAMES)} and `say` turns, every "
          f"{BARGE_EVERY}th reply talked over")
    if args.tracemalloc:
        tracemalloc.start()
    with tempfile.TemporaryDirectory() as tmp:
        run, server = await soak(args, tmp, proactive=True, target=args.rotations, max_s=args.max_seconds * 0.75)
        print(f"pivoice (opens the next session ahead of the limit, switches when idle), "
              f"target {args.rotations} rotations:")
        lost = print_run(run, server)
        flat = print_memory(run, args.rss_bound_mb)
        errors = sum(n for (level, _), n in logs.counts.items() if level in ("ERROR", "CRITICAL"))
        print(f"  log: {errors} ERROR records; most frequent warnings/errors: "
              f"{[f'{n}x {what}' for (_, what), n in logs.counts.most_common(4)]}")
        base_lost = None
        remaining = args.max_seconds - (time.monotonic() - start)
        if args.baseline_sessions and remaining > 20:
            logs.counts.clear()
            base, base_server = await soak(args, tmp, proactive=False, target=args.baseline_sessions, max_s=remaining - 15)
            print(f"naive baseline (rotate_margin 0: reconnects when the server ends the session), "
                  f"target {args.baseline_sessions} sessions ended by the server:")
            base_lost = print_run(base, base_server)
    reached = run.final["rotations"] >= args.rotations
    print(f"verdict: lost turns {lost} (naive baseline: {base_lost if base_lost is not None else 'not run'}); "
          f"memory {'flat' if flat else 'NOT flat'}; rotations {run.final['rotations']}/{args.rotations}"
          f"{'' if reached else ' (NOT reached in time)'}; device stopped cleanly: {not run.hung}; "
          f"{time.monotonic() - start:.0f} s in all")
    if not reached or run.hung:
        return 2
    return 0 if lost == 0 and flat else 1


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rotations", type=int, default=100, help="proactive rotations to reach (default 100)")
    p.add_argument("--max-seconds", type=float, default=420.0, help="wall-clock bound of the whole bench")
    p.add_argument("--speed", type=float, default=16.0, help="time compression (default 16)")
    p.add_argument("--session-s", type=float, default=30.0, help="session limit, simulated seconds (default 30)")
    p.add_argument("--drop-every-s", type=float, default=180.0, help="a link drop every this many simulated s")
    p.add_argument("--baseline-sessions", type=int, default=25, help="naive baseline length (0: skip it)")
    p.add_argument("--rss-bound-mb", type=float, default=4.0, help="allowed growth, last third vs first third")
    p.add_argument("--tracemalloc", action="store_true", help="print the top growth sites (slower)")
    p.add_argument("--seed", type=int, default=17)
    return p.parse_args(argv)


def main() -> int:
    args = parse_args()
    logs = CountingHandler()
    logging.basicConfig(level=logging.WARNING, handlers=[logs])
    return asyncio.run(amain(args, logs))


if __name__ == "__main__":
    sys.exit(main())
