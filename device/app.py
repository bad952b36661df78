"""The device as a whole: one object owns every task (an ``asyncio.TaskGroup``).

Wiring (data flows one way; everything else is events on the bus)::

    Microphone --bridge--> AudioPipeline.on_mic --> uplink queue --> SessionManager --> WebSocket
    WebSocket --> SessionManager --> AudioPipeline.on_server_event --> PlaybackBuffer --> Speaker
    pipeline / manager / button --Input--> StateMachine --"state" event--> bus
    bus --> LEDs, control socket (status, events), systemd STATUS line

Lifecycle: :meth:`run` starts the tasks, says ``READY=1`` once the control socket listens,
the audio devices are being kept open and the first connection attempt has begun (not once it
succeeded: with the network down at boot the device is up and shows "offline"), then waits
for SIGTERM/SIGINT (``STOPPING=1``, LEDs off, socket removed, exit 0). SIGHUP reloads the
config: the API key and ``[realtime]`` settings take effect with the next session, an error
state is retried at once; audio and GPIO changes need a restart (logged).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from hardware.bridge import LoopBridge
from hardware.gestures import Gesture, GestureEvent
from hardware.leds import LedAnimator

from . import config as cfg
from .audio.pipeline import API_RATE, AudioPipeline
from .hwfactory import Hardware, real_hardware
from .audio.playback import PlaybackBuffer
from .audio.turns import TurnMode, TurnTaker
from .bus import BusEvent, EventBus
from .commands import control_commands
from .control import ControlServer
from .errors import AudioDeviceError
from .ledview import follow_state
from .notify import Notifier, health_problems
from .realtime.backoff import backoff
from .realtime.carryover import History
from .realtime.connection import Endpoint
from .realtime.manager import Options, SessionManager
from .realtime.session import SessionSettings, TurnDetection
from .state import DeviceState
from .statemachine import Input, StateMachine
from .tools.box import ToolBox
from .tools.builtin import builtin_tools
from .tools.http import http_tool

logger = logging.getLogger(__name__)
STATUS_EVERY_S = 5.0


class App:
    def __init__(self, config: cfg.Config, *, hardware: Hardware | None = None, config_path: str | None = None,
                 api_key: Callable[[], str] = cfg.api_key, notifier: Notifier | None = None,
                 manager_options: Options | None = None) -> None:
        self.config = config
        self.config_path = config_path
        self.hardware = hardware or real_hardware(config)
        self.api_key = api_key
        self.notifier = notifier or Notifier()
        self.bus = EventBus()
        self.machine = StateMachine(self.bus)
        self.history = History()
        self.tools = ToolBox(builtin_tools(self) + [http_tool(t) for t in config.tools])
        self.playback = PlaybackBuffer(API_RATE, prebuffer_ms=config.audio.prebuffer_ms)
        self.turns = TurnTaker(config.turns.mode, config.turns.vad, server_silence_ms=config.turns.silence_ms,
                               echo_guard=config.audio.echo_guard, hold_s=config.gpio.timing.hold_s)
        self.pipeline: AudioPipeline | None = None   # needs the mic's rate: built when it opens
        self.simulator: Any = None   # the built-in simulator, when [realtime] simulator = true
        self.manager = SessionManager(endpoint=self.endpoint, settings=self.session_settings, pipeline=None,
                                      machine=self.machine, history=self.history, call_tool=self.tools.call,
                                      options=manager_options or self._options(), publish=self.publish)
        self.mic: Any = None
        self.speaker: Any = None
        self.audio_problem: str | None = None
        self.gpio_problem: str | None = None
        self.started = time.monotonic()
        self.last_mic_frame = 0.0
        self._stop = asyncio.Event()
        self._pipeline_ready = asyncio.Event()
        self._volume = config.audio.volume
        self._speech_frames_at_hold = 0
        self.ready_at: float | None = None

    # ------------------------------------------------------------- settings
    def _options(self) -> Options:
        rt = self.config.realtime
        return Options(session_limit_s=rt.session_limit, rotate_margin_s=rt.rotate_margin,
                       carry_turns=rt.carry_turns, fatal_retry_s=rt.fatal_retry)

    def endpoint(self) -> Endpoint:
        rt = self.config.realtime
        key = self.api_key()
        if rt.simulator:
            url = self.simulator.url if self.simulator else "ws://127.0.0.1:9/v1/realtime"  # not started yet
            return Endpoint(url=url, model=rt.model, dialect=rt.dialect,
                            api_key=key or "simulator")
        return Endpoint(url=rt.url, model=rt.model, dialect=rt.dialect, api_key=key)

    def session_settings(self) -> SessionSettings:
        rt, turns = self.config.realtime, self.config.turns
        detection = TurnDetection(silence_duration_ms=turns.silence_ms,
                                  interrupt_response=True) if turns.mode is TurnMode.SERVER_VAD else None
        return SessionSettings(instructions=rt.instructions, voice=rt.voice, turn_detection=detection,
                               transcription_model=rt.transcription_model, tools=self.tools.tools())

    # ------------------------------------------------------------- events
    def publish(self, kind: str, data: dict) -> None:
        self.bus.publish(BusEvent(kind, time.monotonic(), {"wall": time.time(), **data}))

    def _on_pipeline_event(self, kind: str, data: dict) -> None:
        if kind == "speech_started":
            self.machine.feed(Input.SPEECH_STARTED)
        elif kind == "speech_ended":
            self.machine.feed(Input.SPEECH_ENDED)
        self.publish(kind, data)

    def _on_mic(self, pcm: bytes, overflowed: bool) -> None:
        self.last_mic_frame = time.monotonic()
        if self.pipeline is None:
            rate = self.hardware.mic_rate or self.mic.rate
            self._build_pipeline(rate, getattr(self.mic, "channels", 1))
        assert self.pipeline is not None
        self.pipeline.on_mic(pcm, overflowed)

    def _build_pipeline(self, rate: int, channels: int) -> None:
        self.pipeline = AudioPipeline(self.turns, self.playback, device_rate=rate, channels=channels,
                                      server_interrupts=True, on_event=self._on_pipeline_event)
        self.pipeline.set_volume(self._volume)
        self.manager.pipeline = self.pipeline
        self._pipeline_ready.set()

    # --------------------------------------------------- device controls (tools, button, CLI)
    def set_volume(self, level: int) -> None:
        self._volume = level
        if self.pipeline:
            self.pipeline.set_volume(level)
        self.publish("volume", {"level": level})

    def set_muted(self, muted: bool) -> None:
        self.turns.muted = muted
        if muted and self.turns.talking and self.pipeline:
            self.pipeline.apply(self.turns.cancel())
        self.machine.feed(Input.MUTE if muted else Input.UNMUTE)
        self.publish("mute", {"muted": muted})

    def end_conversation(self) -> None:
        self.manager.end_after_reply()

    def new_conversation(self) -> None:
        logger.info("new conversation: nothing is carried over")
        if self.pipeline:
            self.pipeline.apply(self.turns.cancel())
            if self.playback.active:
                self.pipeline.barge_in("new_conversation")
        self.manager.new_conversation()
        self.publish("new_conversation", {})

    def talk(self, on: bool, held_for_ms: int = 0) -> None:
        """Start or end a push-to-talk turn. In the VAD modes the VAD ends turns, so a hold
        only interrupts the device if it is speaking."""
        if self.pipeline is None:
            return
        if on and self.playback.active:
            self.pipeline.barge_in("button")
        if self.turns.mode is not TurnMode.PUSH_TO_TALK:
            return
        self.pipeline.apply(self.turns.press(held_for_ms) if on else self.turns.release())

    def on_gesture(self, event: GestureEvent) -> None:
        self.publish("button", {"gesture": str(event.gesture)})
        if event.gesture is Gesture.HOLD_START:
            self._speech_frames_at_hold = self.pipeline.counters.speech_frames if self.pipeline else 0
            self.talk(True, int((event.at - event.pressed_at) * 1000))
        elif event.gesture is Gesture.HOLD_END:
            self.talk(False)
        elif event.gesture is Gesture.TAP:
            if self.playback.active and self.pipeline:
                self.pipeline.barge_in("button")
                self.machine.feed(Input.REPLY_FINISHED)
        elif event.gesture is Gesture.DOUBLE_TAP:
            self.set_muted(not self.turns.muted)
        elif event.gesture is Gesture.LONG_HOLD:
            heard = self.pipeline.counters.speech_frames - self._speech_frames_at_hold if self.pipeline else 0
            if self.turns.talking and heard * self.turns.frame_ms >= 300:
                logger.info("long hold while talking: the push-to-talk turn goes on")
            else:
                self.new_conversation()

    # ------------------------------------------------------------- status
    def status(self) -> dict:
        counters = self.pipeline.counters if self.pipeline else None
        manager = self.manager.status()
        endpoint = self.endpoint()
        return {
            "state": str(self.machine.state), "state_for_s": round(time.monotonic() - self.machine.since, 1),
            "muted": self.turns.muted, **manager,
            "endpoint": endpoint.url if not self.config.realtime.simulator else f"{endpoint.url} (built-in simulator)",
            "model": endpoint.model, "dialect": str(endpoint.dialect), "turn_mode": str(self.turns.mode),
            "uptime_s": round(time.monotonic() - self.started, 1), "volume": self._volume,
            "underruns": self.playback.stats.underruns,
            "overflows": counters.overflows if counters else 0,
            "barge_ins": counters.barge_ins if counters else 0,
            "dropped_uplink_frames": counters.dropped_up if counters else 0,
            "mic_frames": counters.mic_frames if counters else 0,
            "audio_problem": self.audio_problem, "gpio_problem": self.gpio_problem,
            "config": self.config.source,
            "api_key": "set" if self.api_key() else "not needed" if self.config.realtime.simulator else "missing",
            "tools": [t.name for t in self.tools.tools()],
        }

    def status_line(self) -> str:
        s = self.manager.status()
        parts = [str(self.machine.state)]
        if s["link"] == "up":
            parts.append(f"session {s['session_id']} age {s['session_age_s']:.0f}s, rotation in {s['rotation_in_s']:.0f}s")
        elif s["link"] == "backoff":
            parts.append(f"reconnecting in {s['next_retry_in_s'] or 0:.0f}s")
        if s["last_error"] and self.machine.state in (DeviceState.ERROR, DeviceState.OFFLINE):
            parts.append(f"last error: {s['last_error'][:120]}")
        if self.audio_problem:
            parts.append(f"audio: {self.audio_problem[:100]}")
        return "; ".join(parts)

    def health(self) -> list[str]:
        conn = self.manager.conn
        return health_problems(now=time.monotonic(), last_mic_frame=self.last_mic_frame, started=self.started,
                               link=self.manager.stats.link, link_open=bool(conn and conn.is_open),
                               playback_active=self.playback.active,
                               last_speaker_write=getattr(self.speaker, "last_write", 0.0) or 0.0,
                               audio_problem=self.audio_problem)

    # ------------------------------------------------------------- run
    def stop(self) -> None:
        self._stop.set()

    def reload(self) -> None:
        path = self.config_path
        self.notifier.reloading()
        try:
            new = cfg.load(path)
        except cfg.ConfigError as exc:
            logger.error("reload failed, keeping the running config: %s", exc)
            self.publish("error", {"error": str(exc), "fatal": False})
            self.notifier.notify(f"READY=1\nSTATUS={self.status_line()}")
            return
        for section in ("audio", "gpio", "turns", "control"):
            if getattr(new, section) != getattr(self.config, section):
                logger.warning("[%s] changed: restart pivoice to apply it (systemctl restart pivoice)", section)
        self.config = replace(self.config, realtime=new.realtime, source=new.source)
        self.manager.options = self._options()
        logger.info("config reloaded from %s", new.source)
        self.publish("reload", {"config": new.source})
        self.manager.wake()
        self.notifier.notify(f"READY=1\nSTATUS={self.status_line()}")

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        bridge = LoopBridge(loop)
        self._install_signals(loop)
        control = ControlServer(self.config.control.socket, self.bus, control_commands(self))
        await control.start()
        try:
            if self.config.realtime.simulator:
                await self._start_simulator()
            self.mic = self.hardware.microphone(self._on_mic, bridge)
            self.speaker = self.hardware.speaker(self.playback.read)
            async with asyncio.TaskGroup() as tg:
                tasks = self._start_tasks(tg, bridge)
                await asyncio.sleep(0)  # let every task take its first step
                self.ready_at = time.monotonic()
                self.notifier.ready(self.status_line())
                logger.info("pivoice is up (%s)", self.status_line())
                await self._stop.wait()
                logger.info("stopping")
                self.notifier.stopping()
                for task in tasks:
                    task.cancel()
        finally:
            await control.close()
            if self.simulator is not None:
                await self.simulator.stop()
            self._remove_signals(loop)
            self.notifier.close()
        logger.info("stopped")
        return 0

    def _start_tasks(self, tg: asyncio.TaskGroup, bridge: LoopBridge) -> list[asyncio.Task]:
        from hardware.audio import keep_open

        leds, pin_factory, problem = self.hardware.gpio()
        self.gpio_problem = problem
        delays = lambda: backoff(base_s=0.5, cap_s=10.0)  # noqa: E731
        tasks = [
            tg.create_task(keep_open(self.mic, delays=delays, on_problem=self._audio_trouble("microphone")), name="mic"),
            tg.create_task(keep_open(self.speaker, delays=delays, on_problem=self._audio_trouble("speaker")), name="speaker"),
            tg.create_task(follow_state(self.bus, LedAnimator(leds)), name="leds"),
            tg.create_task(self._run_manager(), name="realtime"),
            tg.create_task(self._watch_playback(), name="playback-watch"),
            tg.create_task(self._systemd(), name="systemd"),
        ]
        if pin_factory is not None and self.config.gpio.button_pin is not None:
            from hardware.buttons import PushButton

            button = PushButton(self.config.gpio.button_pin, self.on_gesture, pin_factory=pin_factory,
                                active_low=self.config.gpio.button_active_low, timing=self.config.gpio.timing,
                                bridge=bridge)
            tasks.append(tg.create_task(button.run(), name="button"))
        return tasks

    def _audio_trouble(self, which: str) -> Callable[[AudioDeviceError | None], None]:
        def report(problem: AudioDeviceError | None) -> None:
            self.audio_problem = f"{which}: {problem}" if problem else None
            if problem:
                self.publish("error", {"error": self.audio_problem, "fatal": False})
        return report

    async def _run_manager(self) -> None:
        await self._pipeline_ready.wait()  # the uplink needs the microphone's rate
        await self.manager.run()

    async def _watch_playback(self) -> None:
        """The reply is over when the last of its audio has been played, not when it arrived."""
        while True:
            await asyncio.sleep(0.05)
            if (self.machine.state is DeviceState.SPEAKING and not self.playback.active
                    and self.pipeline and self.pipeline.active_response is None):
                self.machine.feed(Input.REPLY_FINISHED)

    async def _systemd(self) -> None:
        """STATUS= every few seconds and on state changes; WATCHDOG=1 only while healthy."""
        interval = self.notifier.watchdog_interval_s
        tick = min(interval, STATUS_EVERY_S) if interval else STATUS_EVERY_S
        states = self.bus.subscribe(maxsize=50)
        last_status, last_complaint = "", 0.0
        try:
            while True:
                # asyncio.timeout, not wait_for: on 3.11 wait_for drops a cancel that lands as the
                # event arrives (a stop publishes one), and the app never finished stopping.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(tick):
                        await states.get()
                line = self.status_line()
                if line != last_status:
                    self.notifier.status(line)
                    last_status = line
                if interval:
                    problems = self.health()
                    if not problems:
                        self.notifier.watchdog()
                    elif time.monotonic() - last_complaint > 10:
                        last_complaint = time.monotonic()
                        logger.error("not feeding the watchdog: %s", "; ".join(problems))
        finally:
            states.close()

    async def _start_simulator(self) -> None:
        from .simulator.server import RealtimeSimulator, SimulatorOptions

        rt = self.config.realtime
        self.simulator = await RealtimeSimulator(SimulatorOptions(
            session_limit_s=rt.session_limit, speedup=rt.simulator_speedup, dialect=rt.dialect)).start()
        logger.info("built-in Realtime simulator on %s", self.simulator.url)

    def _install_signals(self, loop: asyncio.AbstractEventLoop) -> None:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGTERM, self.stop)
            loop.add_signal_handler(signal.SIGINT, self.stop)
            loop.add_signal_handler(signal.SIGHUP, self.reload)

    def _remove_signals(self, loop: asyncio.AbstractEventLoop) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)
