"""The device as a whole: it wires the parts and owns every task (an ``asyncio.TaskGroup``).

Data passes through each part once::

    Microphone --bridge--> AudioPipeline.on_mic --turn decisions--> SessionManager
        --> RealtimeConversation (sans-I/O) --outbox--> sender --> WebSocket
    WebSocket --> SessionManager --> RealtimeConversation --Play--> AudioPipeline.play
        (resampled once, to the speaker's rate) --> PlaybackBuffer --> Speaker
    Speaker thread --bridge--> playback_started / playback_drained --> the conversation
    every part --facts--> EventBus --> StateMachine (listener), LEDs, control socket,
        systemd STATUS/WATCHDOG, metrics

A missing part never stops the rest: each audio device is kept open by its own task, which
retries it and reports ``device_problem`` / ``device_ok``; without a microphone the device
still connects and answers ``say``, without a speaker replies are dropped and count as played.

Lifecycle: :meth:`run` starts the tasks and says ``READY=1`` once the control socket
listens, the audio devices are being kept open and the first connection attempt has begun
(not once it succeeded: with the network down at boot the device is up and shows
"offline"), then waits for SIGTERM/SIGINT (``STOPPING=1``, LEDs off, socket removed, exit 0).
SIGHUP reloads the config: ``[realtime]`` and the key take effect with the next session.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from hardware.bridge import LoopBridge
from hardware.keepopen import keep_open
from hardware.leds import LedAnimator
from hardware.standin import StandIn

from . import appstatus, metrics
from . import config as cfg
from .audio import build
from .audio.miclevel import MicLevel
from .audio.pipeline import AudioPipeline
from .audio.turns import TurnMode
from .bus import BusEvent, EventBus
from .commands import control_commands
from .control import ControlServer
from .controls import Controls
from .errors import AudioDeviceError, ConfigError
from .hwfactory import Hardware, real_hardware
from .ledview import follow_state
from .notify import Notifier, health_problems, report_to_systemd
from .realtime.backoff import backoff
from .realtime.carryover import History
from .realtime.connection import Endpoint
from .realtime.conversation import RealtimeConversation
from .realtime.manager import Options, SessionManager
from .realtime.secrets import fetch_client_secret
from .realtime.session import SessionSettings, TurnDetection
from .redact import scrub_url
from .state import DeviceState
from .statemachine import StateMachine
from .tools.box import ToolBox
from .tools.builtin import builtin_tools
from .tools.http import http_tool

if TYPE_CHECKING:   # GPT-Live's modules load only for [realtime] api = "live" (0.9 MB less RSS without)
    from .live.conversation import LiveConversation
    from .live.manager import LiveOptions, LiveSessionManager

logger = logging.getLogger(__name__)

__all__ = ["App", "Hardware"]


class App:
    def __init__(self, config: cfg.Config, *, hardware: Hardware | None = None, config_path: str | None = None,
                 api_key: Callable[[], str] = cfg.api_key, notifier: Notifier | None = None,
                 manager_options: Options | LiveOptions | None = None,
                 device_token: Callable[[], str] = cfg.device_token) -> None:
        self.config = config
        self.device_token = device_token
        self.config_path = config_path
        self.hardware = hardware or real_hardware(config)
        self.api_key = api_key
        self.notifier = notifier or Notifier()
        self.bus = EventBus()
        self.machine = StateMachine(self.bus)
        self.bus.listen(self.machine.follow)
        # With an echo canceller the microphone is clean: the VAD alone decides (no echo guard).
        # "auto" with the simulated sound card: no room, no echo path, nothing to cancel (AEC3's
        # suppressor would only dampen a person talking over a reply).
        simulated = config.audio.backend == "simulated" and config.audio.echo_cancel == "auto"
        canceller = None if simulated else build.echo_canceller(config.audio.echo_cancel)
        if config.wake.stop and canceller is None and config.audio.backend != "simulated":
            logger.warning("[wake] stop without an echo canceller: the device's own voice can say the word and "
                           "stop its reply; set [audio] echo_cancel = \"webrtc\" (pip install 'pivoice[aec]')")
        self.turns = build.turn_taker(config, cancelled=canceller is not None)
        self.pipeline = AudioPipeline(self.turns, prebuffer_ms=config.audio.prebuffer_ms, canceller=canceller,
                                      wake=build.wake_detector(config.wake), mic_period_ms=config.audio.mic_period_ms,
                                      idle_period_ms=config.audio.idle_period_ms, stop=build.stop_detector(config.wake),
                                      echo_guard=config.audio.echo_guard)
        self.pipeline.on_wake = self._wake_heard
        self.tools = ToolBox()
        self.conversation: RealtimeConversation | LiveConversation
        self.manager: SessionManager | LiveSessionManager
        if config.realtime.api == "live":   # GPT-Live: connected on demand (device/live/wiring.py)
            from .live import wiring
            self.conversation, self.manager = wiring.live_parts(self, manager_options)
        else:
            self.conversation = RealtimeConversation(server_interrupts=config.turns.mode is TurnMode.SERVER_VAD,
                                                     history=History(), carry_turns=config.realtime.carry_turns)
            self.manager = SessionManager(endpoint=self.endpoint, settings=self.session_settings,
                                          conversation=self.conversation, pipeline=self.pipeline,
                                          run_tool=self.tools.run,
                                          options=manager_options if isinstance(manager_options, Options)
                                          else self._options(), publish=self.publish, credentials=self.credentials)
        self.controls = Controls(turns=self.turns, pipeline=self.pipeline, session=self.manager,
                                 publish=self.publish, volume=config.audio.volume)
        for spec in builtin_tools(self.controls) + [http_tool(t) for t in config.tools]:
            self.tools.add(spec)
        self.simulator: Any = None   # the built-in simulator, when [realtime] simulator = true
        self.mic: Any = None
        self.speaker: Any = None
        #: digital silence in the microphone's place while it is missing (hardware/standin.py)
        self.stand_in = StandIn(self.pipeline.on_mic, self.pipeline.mic_opened)
        self.mic_level = MicLevel()   # the real microphone's, for the status
        self.controls.mic_missing = lambda: self.stand_in.active or self.pipeline.frontend is None
        self.device_problems: dict[str, str] = {}
        self.gpio_problem: str | None = None
        self.started = time.monotonic()
        self._stop = asyncio.Event()
        self.ready_at: float | None = None
        self.control: ControlServer | None = None
        self.metrics = metrics.for_app(self)

    @property
    def history(self) -> History:
        assert isinstance(self.conversation, RealtimeConversation), "Live keeps its memory in conversation.memory"
        return self.conversation.history

    @property
    def audio_problem(self) -> str | None:
        return "; ".join(f"{part}: {problem}" for part, problem in self.device_problems.items()) or None

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
            return Endpoint(url=url, model=rt.model, dialect=rt.dialect, api_key=key or "simulator")
        return Endpoint(url=rt.url, model=rt.model, dialect=rt.dialect, api_key=key)

    async def credentials(self, endpoint: Endpoint) -> Endpoint:
        """With ``[realtime] token_url``, every session gets a fresh short-lived client secret
        from the token server: the device holds no long-lived key."""
        rt = self.config.realtime
        if not rt.token_url:
            return endpoint
        secret = await fetch_client_secret(rt.token_url, self.device_token(), timeout_s=10.0)
        return replace(endpoint, api_key=secret.value)

    def session_settings(self) -> SessionSettings:
        rt, turns = self.config.realtime, self.config.turns
        detection = TurnDetection(silence_duration_ms=turns.silence_ms,
                                  interrupt_response=True) if turns.mode is TurnMode.SERVER_VAD else None
        return SessionSettings(instructions=rt.instructions, voice=rt.voice, turn_detection=detection,
                               transcription_model=rt.transcription_model, tools=self.tools.tools(),
                               reasoning_effort=rt.reasoning_effort)

    # ------------------------------------------------------------- events
    def publish(self, kind: str, data: dict[str, Any]) -> None:
        self.bus.publish(BusEvent(kind, time.monotonic(), {"wall": time.time(), **data}))

    def _wake_heard(self, word: str, score: float) -> None:
        self.publish("wake", {"word": word, "score": round(score, 3)})
        if self.config.wake.earcon:
            self.pipeline.earcon()

    # ------------------------------------------------------------- status
    def status(self) -> dict[str, Any]:
        manager = self.manager.status()
        endpoint = self.endpoint()
        counters = self.pipeline.counters
        playback = self.pipeline.playback
        return {
            "state": str(self.machine.state), "state_for_s": round(time.monotonic() - self.machine.since, 1),
            "muted": self.turns.muted, "idle_closes": 0, **manager,   # idle_closes: GPT-Live's
            "endpoint": (scrub_url(endpoint.url) if not self.config.realtime.simulator
                         else f"{endpoint.url} (built-in simulator)"),
            "api": self.config.realtime.api, "model": endpoint.model,
            "dialect": "live" if self.config.realtime.api == "live" else str(endpoint.dialect),
            "turn_mode": str(self.turns.mode),
            "uptime_s": round(time.monotonic() - self.started, 1), "volume": self.controls.volume,
            "underruns": playback.stats.underruns if playback else 0,
            "playback_dropped_ms": playback.stats.dropped_ms if playback else 0,
            "overflows": counters.overflows, "mic_frames": counters.mic_frames, "wake_words": counters.wake_words,
            "stand_in_frames": counters.stand_in_frames,
            "stop_words": self.pipeline.stop_word.heard if self.pipeline.stop_word else 0,
            "voice_barge_ins": counters.local_barge_ins, "talk_over_dismissed": counters.talk_over_dismissed,
            "speaker_hushes": getattr(self.speaker, "hushes", 0), "echo_canceller": appstatus.aec_status(self.pipeline),
            "audio_bytes_up": self.conversation.stats.bytes_up, "audio_bytes_down": self.conversation.stats.bytes_down,
            "metrics": self.metrics.where(),
            "audio_problem": self.audio_problem, "gpio_problem": self.gpio_problem,
            "microphone": appstatus.device_line("microphone", self.mic, self.device_problems),
            "mic_level": self.mic_level.status(time.monotonic()),
            "microphone_unclocked": bool(getattr(self.mic, "unclocked", False)),   # hardware/pacing.py
            "speaker": appstatus.device_line("speaker", self.speaker, self.device_problems),
            "config": self.config.source,
            "api_key": ("short-lived secrets from the token server" if self.config.realtime.token_url else
                        "set" if self.api_key() else "not needed" if self.config.realtime.simulator else "missing"),
            "tools": [t.name for t in self.tools.tools()],
            **appstatus.control_counters(self.control),
        }

    def status_line(self) -> str:
        s = self.manager.status()
        parts = [str(self.machine.state)]
        if s["link"] == "up" and s["rotation_in_s"] is not None:
            parts.append(f"session {s['session_id']} age {s['session_age_s']:.0f}s, "
                         f"rotation in {s['rotation_in_s']:.0f}s")
        elif s["link"] == "up":
            parts.append(f"GPT-Live session {s['session_id']} age {s['session_age_s']:.0f}s, "
                         f"idle close in {s['idle_close_in_s'] or 0:.0f}s")
        elif s["link"] == "standby":
            parts.append(f"GPT-Live standby (connects on demand; {s['billed_s']:.0f}s billed)")
        elif s["link"] == "backoff":
            parts.append(f"reconnecting in {s['next_retry_in_s'] or 0:.0f}s")
        if s["last_error"] and self.machine.state in (DeviceState.ERROR, DeviceState.OFFLINE):
            parts.append(f"last error: {s['last_error'][:120]}")
        if self.audio_problem:
            parts.append(f"audio: {self.audio_problem[:100]}")
        return "; ".join(parts)

    def health(self) -> list[str]:
        conn = self.manager.conn
        return health_problems(now=time.monotonic(), last_mic_frame=self.pipeline.last_frame_at, started=self.started,
                               link=self.manager.stats.link, link_open=bool(conn and conn.is_open),
                               playback_active=self.pipeline.speaking,
                               last_speaker_write=getattr(self.speaker, "last_write", 0.0) or 0.0,
                               audio_problem=self.audio_problem)

    # ------------------------------------------------------------- audio devices
    def _audio_trouble(self, part: str) -> Callable[[AudioDeviceError | None], None]:
        """How a kept-open device reports: a problem (missing, stopped) or None (open again)."""
        def report(problem: AudioDeviceError | None) -> None:
            device = self.mic if part == "microphone" else self.speaker
            if problem is None:
                if part == "microphone":
                    self.stand_in.back()
                    self.pipeline.mic_opened(device.rate, device.channels)
                else:
                    self.pipeline.speaker_opened(device.rate)
                if self.device_problems.pop(part, None) is not None:
                    self.publish("device_recovered", {"part": part})
                    if not self.device_problems:
                        self.publish("device_ok", {})
                return
            if part == "speaker":
                self.pipeline.speaker_closed()
            else:
                self.stand_in.missing()
            text = str(problem)
            if self.device_problems.get(part) != text:
                self.device_problems[part] = text
                self.publish("device_problem", {"part": part, "problem": f"{part}: {text}",
                                                "error": f"{part}: {text}", "fatal": False})
        return report

    # ------------------------------------------------------------- run
    def stop(self) -> None:
        self._stop.set()

    def reload(self) -> None:
        path = self.config_path
        self.notifier.reloading()
        try:
            new = cfg.load(path)
        except ConfigError as exc:
            logger.error("reload failed, keeping the running config: %s", exc)
            self.publish("error", {"error": str(exc), "fatal": False})
            self.notifier.notify(f"READY=1\nSTATUS={self.status_line()}")
            return
        if new.realtime.api != self.config.realtime.api:   # a different conversation core and manager
            logger.error("[realtime] api changed to %r: restart pivoice to apply it (systemctl restart pivoice); "
                         "keeping the running config", new.realtime.api)
            self.notifier.notify(f"READY=1\nSTATUS={self.status_line()}")
            return
        for section in ("audio", "gpio", "turns", "control", "metrics", "wake"):
            if getattr(new, section) != getattr(self.config, section):
                logger.warning("[%s] changed: restart pivoice to apply it (systemctl restart pivoice)", section)
        self.config = replace(self.config, realtime=new.realtime, source=new.source)
        if isinstance(self.manager, SessionManager):
            self.manager.options = self._options()
        else:
            from .live import wiring
            wiring.reload(self)
        logger.info("config reloaded from %s", new.source)
        self.publish("reload", {"config": new.source})
        self.manager.wake()
        self.notifier.notify(f"READY=1\nSTATUS={self.status_line()}")

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        bridge = LoopBridge(loop)
        self.pipeline.post = bridge.post
        self._install_signals(loop)
        control = self.control = ControlServer(self.config.control.socket, self.bus,
                                               control_commands(self.controls, self.status))
        await control.start()
        try:
            if self.config.realtime.simulator:
                await self._start_simulator()
            self.mic = self.hardware.microphone(self.mic_level.tap(self.stand_in.real), bridge)
            self.speaker = self.hardware.speaker(self.pipeline.read)
            self.pipeline.wake_speaker = getattr(self.speaker, "wake", self.pipeline.wake_speaker)
            self.pipeline.set_mic_period = self.mic.set_period
            speaker = self.speaker
            self.pipeline.speaker_lead = lambda: speaker.lead_s
            self.pipeline.speaker_unheard = lambda: speaker.unheard_s
            self.pipeline.hush_speaker = speaker.hush
            async with asyncio.TaskGroup() as tg:
                tasks = self._start_tasks(tg, bridge)
                await asyncio.sleep(0)  # let every task take its first step
                self.ready_at = time.monotonic()
                self.notifier.ready(self.status_line())
                logger.info("pivoice is up (%s)", self.status_line())
                await self._stop.wait()
                logger.info("stopping")
                self.stand_in.back()
                self.notifier.stopping()
                for task in tasks:
                    task.cancel()
        finally:
            self.stand_in.back()
            await control.close()
            if self.simulator is not None:
                await self.simulator.stop()
            self._remove_signals(loop)
            self.notifier.close()
        logger.info("stopped")
        return 0

    def _start_tasks(self, tg: asyncio.TaskGroup, bridge: LoopBridge) -> list[asyncio.Task[Any]]:
        leds, pin_factory, problem = self.hardware.gpio()
        self.gpio_problem, animator = problem, LedAnimator(leds)
        self.pipeline.after_period = animator.tick    # a pulse is drawn on the microphone's periods
        delays = lambda: backoff(base_s=0.5, cap_s=10.0)  # noqa: E731
        tasks = [
            tg.create_task(keep_open(self.mic, delays=delays, on_problem=self._audio_trouble("microphone")),
                           name="mic"),
            tg.create_task(keep_open(self.speaker, delays=delays, on_problem=self._audio_trouble("speaker")),
                           name="speaker"),
            tg.create_task(follow_state(self.bus, animator), name="leds"),
            tg.create_task(self.manager.run(), name="realtime"),
            tg.create_task(report_to_systemd(self.notifier, self.bus, self.status_line, self.health), name="systemd"),
            tg.create_task(self.metrics.run(self.config.metrics.address), name="metrics"),
        ]
        if pin_factory is not None and self.config.gpio.button_pin is not None:
            from hardware.buttons import PushButton

            button = PushButton(self.config.gpio.button_pin, self.controls.on_gesture, pin_factory=pin_factory,
                                active_low=self.config.gpio.button_active_low, timing=self.config.gpio.timing,
                                bridge=bridge)
            tasks.append(tg.create_task(button.run(), name="button"))
        return tasks

    async def _start_simulator(self) -> None:
        from .simulator.server import RealtimeSimulator, SimulatorOptions

        rt = self.config.realtime
        if rt.api == "live":
            from .live import wiring
            self.simulator = await wiring.start_simulator(self)
            logger.info("built-in GPT-Live simulator on %s", self.simulator.url)
            return
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
