"""Metrics figures, each against a naive baseline measured in the same run.

    .venv/bin/python bench/metrics_bench.py

A real device (App on simulated hardware, the built-in simulator over loopback) takes a few
spoken and typed turns with the endpoint on; then:

1. The cost of a scrape: rendering the whole endpoint (one status snapshot taken on the loop,
   the histograms, the process collector) from another thread as the HTTP server does, and a
   full HTTP GET; against formatting the same status counters by hand with f-strings, and
   against a bare prometheus registry holding the same values as plain Gauges.
2. What a scrape costs the audio loop itself: the snapshot (``App.status()`` + ``health()``).
3. The bus consumer per turn: the events recorded during those turns replayed through
   ``Metrics.handle``, in microseconds per event, against a consumer that only counts kinds.
Not a test: it prints, it does not assert.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
import urllib.request
from collections import Counter as Tally
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gpiozero.pins.mock import MockFactory, MockPWMPin  # noqa: E402
from prometheus_client import CollectorRegistry, Gauge, ProcessCollector, generate_latest  # noqa: E402
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from device import config as cfg  # noqa: E402
from device.app import App, Hardware  # noqa: E402
from device.bus import BusEvent  # noqa: E402
from device.metrics import STATUS_COUNTERS, Metrics  # noqa: E402
from device.realtime.manager import Options  # noqa: E402
from device.simulator.server import RealtimeSimulator, SimulatorOptions  # noqa: E402
from device.state import DeviceState  # noqa: E402
from hardware.leds import SimLeds  # noqa: E402
from hardware.sim import SimMicrophone, SimSpeaker  # noqa: E402

CLIP = Path("/usr/share/pocketsphinx/test/data/goforward.raw")


async def until(predicate, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("benchmark step did not finish")
        await asyncio.sleep(0.01)


def per_call(fn, n: int) -> float:
    """Median seconds per call over 5 rounds of ``n`` calls."""
    rounds = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(n):
            fn()
        rounds.append((time.perf_counter() - start) / n)
    return statistics.median(rounds)


def by_hand(families: list) -> bytes:
    """The same samples as the endpoint's, formatted with f-strings (values already at hand)."""
    lines = []
    for name, doc, kind, samples in families:
        lines += [f"# HELP {name} {doc}", f"# TYPE {name} {kind}"]
        for sample, labels, value in samples:
            label_text = ",".join(f'{k}="{v}"' for k, v in labels.items())
            lines.append(f"{sample}{{{label_text}}} {value}" if label_text else f"{sample} {value}")
    return ("\n".join(lines) + "\n").encode()


def bare_registry(status: dict) -> CollectorRegistry:
    reg = CollectorRegistry()
    for key, (name, doc) in STATUS_COUNTERS.items():
        Gauge(f"pivoice_{name}", doc, registry=reg).set(status.get(key, 0))
    return reg


async def run_device(tmp: str) -> tuple[App, asyncio.Task, RealtimeSimulator, list[BusEvent]]:
    sim = await RealtimeSimulator(SimulatorOptions(speedup=8.0, seed=1)).start()
    config = cfg.parse({"realtime": {"url": sim.url}, "audio": {"backend": "simulated"}, "gpio": {"pin_factory": "mock"},
                        "control": {"socket": f"{tmp}/control.sock"}, "metrics": {"listen": "127.0.0.1:0"}})
    hardware = Hardware(microphone=lambda on_audio, bridge: SimMicrophone(on_audio, rate=16000, speed=2.0),
                        speaker=lambda read: SimSpeaker(read, speed=2.0),
                        gpio=lambda: (SimLeds(), MockFactory(pin_class=MockPWMPin), None))
    app = App(config, hardware=hardware, api_key=lambda: "bench", manager_options=Options(ping_interval_s=None))
    events: list[BusEvent] = []
    sub = app.bus.subscribe(maxsize=100000)
    task = asyncio.create_task(app.run())
    await until(lambda: app.machine.state is DeviceState.IDLE and app.metrics.url is not None)
    for turn in range(3):
        replies = app.conversation.stats.replies
        if turn % 2 == 0:
            app.mic.say(CLIP.read_bytes() + bytes(32 * 1200))
        else:
            app.manager.say("Hello there")   # publishes "say" itself
        await until(lambda: app.conversation.stats.replies > replies and not app.pipeline.speaking
                    and app.machine.state is DeviceState.IDLE)
    while not sub.queue.empty():
        events.append(sub.queue.get_nowait())
    sub.close()
    return app, task, sim, events


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        app, task, sim, events = await run_device(tmp)
        turns = 3
        try:
            status = app.status()
            url = app.metrics.url

            def get() -> bytes:
                with urllib.request.urlopen(url, timeout=10) as response:
                    return response.read()

            render = await asyncio.to_thread(per_call, lambda: generate_latest(app.metrics.registry), 200)
            http = await asyncio.to_thread(per_call, get, 50)
            text = (await asyncio.to_thread(get)).decode()
            families = [(f.name, f.documentation, f.type, [(x.name, x.labels, x.value) for x in f.samples])
                        for f in text_string_to_metric_families(text)]
            snapshot = per_call(app.metrics._take, 2000)
            status_only = per_call(app.status, 2000)
        finally:
            app.stop()
            await task
            await sim.stop()
    hand = per_call(lambda: by_hand(families), 2000)
    process = CollectorRegistry()
    ProcessCollector(registry=process)
    process_ms = per_call(lambda: generate_latest(process), 500)
    bare = bare_registry(status)
    bare_ms = per_call(lambda: generate_latest(bare), 2000)

    fresh = Metrics(app.bus, status=lambda: status, health=lambda: [], tool_names=lambda: ["get_time"])
    consumer = per_call(lambda: [fresh.handle(e) for e in events], 200) / len(events)
    direct = per_call(lambda: generate_latest(fresh.registry), 200)   # no loop: the snapshot is taken in place
    tally: Tally[str] = Tally()
    naive = per_call(lambda: [tally.update((e.kind,)) for e in events], 200) / len(events)

    samples = sum(len(f[3]) for f in families)
    print(f"scrape ({len(text)} bytes, {len(families)} families, {samples} samples):")
    print(f"  render from the HTTP thread (snapshot via the loop): {render * 1e3:8.3f} ms")
    print(f"  render with the status at hand (no hop to the loop): {direct * 1e3:8.3f} ms")
    print(f"  full HTTP GET over loopback:                         {http * 1e3:8.3f} ms")
    print(f"  baseline: the same samples formatted by hand:        {hand * 1e3:8.3f} ms")
    print(f"  baseline: a bare registry, {len(STATUS_COUNTERS)} counters as Gauges:   {bare_ms * 1e3:8.3f} ms")
    print(f"  the library's process collector alone (/proc):      {process_ms * 1e3:8.3f} ms")
    print("cost to the audio loop per scrape:")
    print(f"  snapshot (status + health) on the loop:              {snapshot * 1e6:8.1f} us")
    print(f"  baseline: App.status() alone (pivoice status):       {status_only * 1e6:8.1f} us")
    print(f"bus consumer ({len(events)} events in {turns} turns, {len(events) / turns:.0f} per turn):")
    print(f"  Metrics.handle:                                      {consumer * 1e6:8.2f} us/event, "
          f"{consumer * len(events) / turns * 1e6:.0f} us/turn")
    print(f"  baseline: counting event kinds in a dict:            {naive * 1e6:8.2f} us/event")


if __name__ == "__main__":
    asyncio.run(main())
