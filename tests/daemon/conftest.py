"""The whole device on simulated hardware against the simulator over loopback."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from gpiozero.pins.mock import MockFactory, MockPWMPin

from device import config as cfg
from device.app import App, Hardware
from device.bus import BusEvent
from device.realtime.manager import Options
from device.state import DeviceState
from hardware.leds import SimLeds
from hardware.sim import SimMicrophone, SimSpeaker

CLIPS = Path("/usr/share/pocketsphinx/test/data")


def clip16k(name: str = "goforward.raw", *, pad_ms: int = 1200) -> bytes:
    return (CLIPS / name).read_bytes() + bytes(32 * pad_ms)


def to_toml(data: dict) -> str:
    """Enough TOML for test configs: tables of scalars and lists, and [[tools]]."""
    def value(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            return repr(v)
        if isinstance(v, str):
            return json.dumps(v)
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        if isinstance(v, dict):
            return "{" + ", ".join(f"{k} = {value(x)}" for k, x in v.items()) + "}"
        raise TypeError(v)
    out = []
    for section, table in data.items():
        if isinstance(table, list):
            for entry in table:
                out.append(f"[[{section}]]")
                out.extend(f"{k} = {value(v)}" for k, v in entry.items())
        else:
            out.append(f"[{section}]")
            out.extend(f"{k} = {value(v)}" for k, v in table.items())
    return "\n".join(out) + "\n"


class Device:
    """A running App with its simulated parts and everything it published."""

    def __init__(self, app: App, sim, leds: SimLeds, pins: MockFactory) -> None:
        self.app = app
        self.sim = sim
        self.leds = leds
        self.pins = pins
        self.events: list[BusEvent] = []
        self._changed = asyncio.Event()
        self.task: asyncio.Task | None = None

    @property
    def mic(self) -> SimMicrophone:
        return self.app.mic

    @property
    def speaker(self) -> SimSpeaker:
        return self.app.speaker

    async def _record(self) -> None:
        sub = self.app.bus.subscribe(maxsize=10000)
        async for event in sub:
            self.events.append(event)
            self._changed.set()

    async def wait_for(self, predicate: Callable[[], object], what: str, timeout: float = 60.0) -> object:
        """Until ``predicate()`` is true (re-checked on every bus event and every 50 ms)."""
        async def loop():
            while not (result := predicate()):
                self._changed.clear()
                try:
                    await asyncio.wait_for(self._changed.wait(), 0.05)
                except asyncio.TimeoutError:
                    pass
            return result
        try:
            return await asyncio.wait_for(loop(), timeout)
        except asyncio.TimeoutError:
            raise AssertionError(f"gave up waiting for {what}; state {self.app.machine.state}, "
                                 f"events {[e.kind for e in self.events[-15:]]}") from None

    async def wait_state(self, state: DeviceState, timeout: float = 60.0) -> None:
        await self.wait_for(lambda: self.app.machine.state is state, f"state {state}", timeout)

    def count(self, kind: str, **match) -> int:
        return len(self.of(kind, **match))

    def of(self, kind: str, **match) -> list[BusEvent]:
        return [e for e in self.events if e.kind == kind and all(e.data.get(k) == v for k, v in match.items())]

    def states(self) -> list[str]:
        return [e.data["state"] for e in self.events if e.kind == "state"]

    async def next_reply(self, after: int | None = None, timeout: float = 60.0) -> BusEvent:
        """The first reply event after ``after`` replies (default: the ones seen so far)."""
        n = self.count("reply") if after is None else after
        await self.wait_for(lambda: self.count("reply") > n, "a reply", timeout)
        return self.of("reply")[n]

    async def spoken_reply(self, after: int, timeout: float = 60.0) -> BusEvent:
        """The first reply with audio after ``after`` replies, once it has finished playing."""
        def found():
            return next((e for e in self.of("reply")[after:] if e.data["audio"]), None)
        reply = await self.wait_for(found, "a spoken reply", timeout)
        await self.wait_for(lambda: not self.app.pipeline.speaking and self.app.machine.state is not DeviceState.SPEAKING,
                            "playback to finish", timeout)
        return reply  # type: ignore[return-value]


@pytest.fixture
async def live_simulator_factory():
    """The built-in GPT-Live simulator on loopback (``pivoice simulator --api live``)."""
    from device.simulator.live_server import LiveSimulator
    from device.simulator.live_session import LiveSimOptions

    started: list[LiveSimulator] = []

    async def start(**options) -> LiveSimulator:
        options.setdefault("seed", 1)
        options.setdefault("ping_interval_s", None)
        sim = await LiveSimulator(LiveSimOptions(**options)).start()
        started.append(sim)
        return sim

    yield start
    for sim in started:
        await sim.stop()


@pytest.fixture
async def device_factory(simulator_factory, live_simulator_factory, tmp_path):
    running: list[Device] = []

    async def start(*, api: str = "realtime", sim_options: dict | None = None, realtime: dict | None = None, turns: dict | None = None,
                    tools: list | None = None, key: Callable[[], str] | str = "test-key", speed: float = 1.0,
                    manager: Options | None = None, notifier=None, wait_ready: bool = True,
                    mic_present: bool = True, speaker_present: bool = True, device_token: str = "",
                    metrics: str = "", wake: dict | None = None, audio: dict | None = None,
                    mic_noise_dbfs: float | None = -70.0) -> Device:
        if api == "live":
            sim = await live_simulator_factory(**(sim_options or {}))
            realtime = {"api": "live", "model": "gpt-live-1", **(realtime or {})}
        else:
            sim = await simulator_factory(**(sim_options or {}))
        data = {"realtime": {"model": "gpt-realtime", **(realtime or {})}, "turns": turns or {},
                "audio": {"backend": "simulated", **(audio or {})},
                "gpio": {"pin_factory": "mock", "button_pin": 17, "led_pins": [18]},
                "control": {"socket": str(tmp_path / f"control{len(running)}.sock")}, "tools": tools or [],
                "metrics": {"listen": metrics}}  # off unless a test scrapes it (no fixed ports in tests)
        if wake:
            data["wake"] = wake
        data["realtime"].setdefault("url", sim.url)
        path = tmp_path / f"config{len(running)}.toml"
        path.write_text(to_toml(data))
        config = cfg.load(path)
        leds = SimLeds()
        pins = MockFactory(pin_class=MockPWMPin)
        hardware = Hardware(
            microphone=lambda on_audio, bridge: SimMicrophone(on_audio, rate=16000, speed=speed, present=mic_present,
                                                              noise_dbfs=mic_noise_dbfs),
            speaker=lambda read: SimSpeaker(read, speed=speed, present=speaker_present),
            gpio=lambda: (leds, pins, None))
        api_key = key if callable(key) else (lambda: key)
        options = manager or Options(session_limit_s=config.realtime.session_limit, rotate_margin_s=60.0,
                                     carry_turns=6, fatal_retry_s=600.0, ping_interval_s=None)
        app = App(config, hardware=hardware, api_key=api_key, manager_options=options, notifier=notifier,
                  config_path=str(path), device_token=lambda: device_token)
        device = Device(app, sim, leds, pins)
        recorder = asyncio.create_task(device._record())
        device.task = asyncio.create_task(app.run())
        device._recorder = recorder
        running.append(device)
        if wait_ready:
            await device.wait_for(lambda: app.ready_at is not None, "READY")
        return device

    yield start
    for device in running:
        device.app.stop()
        try:
            done, _ = await asyncio.wait({device.task}, timeout=10)
            if not done:
                stuck = [f"{t.get_name()}: {t.get_stack(limit=3)}" for t in asyncio.all_tasks() if not t.done()]
                raise AssertionError("the device did not stop within 10 s; tasks:\n" + "\n".join(stuck))
            device.task.result()
        finally:
            device._recorder.cancel()
