"""The configuration: one TOML file, loaded and validated here, into frozen dataclasses.

``pivoice run --config PATH``, else ``$PIVOICE_CONFIG``, else ``/etc/pivoice/config.toml``;
a missing default file means the embedded defaults. Every mistake is a
:class:`~device.errors.ConfigError` naming the key and the file. The API key is never read
from here: it comes from ``OPENAI_API_KEY`` or the systemd credential ``openai_api_key``
(:func:`api_key`).
"""

from __future__ import annotations

import math
import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

from hardware.gestures import GestureTiming
from hardware.gpio import FACTORIES, GpioSettings
from hardware.presets import LedSpec, preset

from . import configcheck
from .audio.turns import EchoGuard, TurnMode
from .audio.vad import VadSettings
from .configcheck import MAX_DEPTH
from .credentials import CREDENTIAL as CREDENTIAL  # re-exported: the key is read there
from .credentials import api_key as api_key
from .credentials import device_token as device_token
from .errors import ConfigError
from .realtime.dialect import Dialect
from .realtime.session import DEFAULT_VOICE, REASONING_EFFORTS
from .redact import scrub
from .wakeconfig import WakeConfig, read_wake

T = TypeVar("T", bound="DataclassInstance")
DEFAULT_PATH = Path("/etc/pivoice/config.toml")
DEFAULT_INSTRUCTIONS = ("You are the voice of a small speaker device. Answer briefly and warmly, "
                        "in the language the person speaks.")


@dataclass(frozen=True)
class RealtimeConfig:
    url: str = "wss://api.openai.com/v1/realtime"
    model: str = "gpt-realtime-2"
    #: session.reasoning.effort for models that take it (gpt-realtime-2*; README "Models").
    reasoning_effort: str = "low"
    #: A token server (``pivoice token-server``) that hands out short-lived client secrets;
    #: when set, the device holds no API key, only its device token. "" = use the API key.
    token_url: str = ""
    dialect: Dialect = Dialect.GA
    #: Seconds; used only when the server's session.created carries no expires_at.
    session_limit: float = 1800.0
    #: Seconds before the limit at which the next session is opened (clamped to a quarter of it).
    rotate_margin: float = 60.0
    voice: str = DEFAULT_VOICE
    instructions: str = DEFAULT_INSTRUCTIONS
    transcription_model: str | None = "gpt-4o-mini-transcribe"
    #: How many recent turns a new session is given as conversation items.
    carry_turns: int = 6
    #: Seconds before a bad key / rejected setup is tried again without a SIGHUP.
    fatal_retry: float = 600.0
    #: Run the built-in simulator in-process and talk to it (no key, no network).
    simulator: bool = False
    simulator_speedup: float = 4.0
    #: "realtime" (default: /v1/realtime, always connected) or "live" (GPT-Live: /v1/live/sessions,
    #: connected on demand; url and model then default to the Live ones).
    api: str = "realtime"
    #: Live: seconds without speech either way before the billed session is closed.
    idle_close: float = 30.0
    #: Live: the Responses model the voice model delegates tool work to (delegation.responses.model).
    delegation_model: str = "gpt-5-mini"


#: [realtime] url and model when api = "live" and the config names none (issue 14).
LIVE_URL = "wss://api.openai.com/v1/live/sessions"
LIVE_MODEL = "gpt-live-1"


@dataclass(frozen=True)
class AudioConfig:
    #: "pyaudio" (PortAudio/ALSA) or "simulated" (no sound card: silence in, nothing out).
    backend: str = "pyaudio"
    input_device: str = "default"
    output_device: str = "default"
    echo_guard: EchoGuard = EchoGuard.GUARDED
    #: "auto" (webrtc where livekit is installed, else off), "webrtc", "speex" or "off" (echo_guard)
    echo_cancel: str = "auto"
    #: Output volume, 0..100 (the set_volume tool changes it at run time).
    volume: int = 80
    mic_period_ms: int = 50
    idle_period_ms: int = 150    # a silent room's period: fewer wake-ups, turns end later (README)
    prebuffer_ms: int = 80


@dataclass(frozen=True)
class TurnsConfig:
    mode: TurnMode = TurnMode.SERVER_VAD
    #: Server VAD: silence that ends a turn, in milliseconds.
    silence_ms: int = 500
    vad: VadSettings = field(default_factory=VadSettings)


@dataclass(frozen=True)
class HttpToolConfig:
    """A tool the model may call, forwarded as a JSON POST to ``url``."""

    name: str
    description: str
    url: str
    timeout: float = 5.0
    parameters: dict[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})


@dataclass(frozen=True)
class ControlConfig:
    socket: str = "/run/pivoice/control.sock"


@dataclass(frozen=True)
class MetricsConfig:
    #: "host:port" of the Prometheus endpoint ("" turns it off; "0.0.0.0:9101" for the LAN;
    #: port 0 picks a free port, shown by `pivoice status`).
    listen: str = "127.0.0.1:9101"

    @property
    def address(self) -> tuple[str, int] | None:
        """(host, port) to bind, or None when off. Valid once parsed (see _Reader.metrics)."""
        if not self.listen:
            return None
        host, _, port = self.listen.rpartition(":")
        return host.strip("[]"), int(port)


@dataclass(frozen=True)
class Config:
    realtime: RealtimeConfig = field(default_factory=RealtimeConfig)
    audio: AudioConfig = field(default_factory=AudioConfig)
    turns: TurnsConfig = field(default_factory=TurnsConfig)
    gpio: GpioSettings = field(default_factory=GpioSettings)
    preset: str = "generic"
    control: ControlConfig = field(default_factory=ControlConfig)
    tools: tuple[HttpToolConfig, ...] = ()
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    wake: WakeConfig = field(default_factory=WakeConfig)
    source: str = "(embedded defaults)"


def config_path(explicit: str | None = None) -> Path:  # --config, $PIVOICE_CONFIG, the default
    return Path(explicit or os.environ.get("PIVOICE_CONFIG") or DEFAULT_PATH)


def load(path: str | Path | None = None) -> Config:
    """Read and validate the config. A missing file is an error when it was named explicitly
    (argument or $PIVOICE_CONFIG); the default path may be absent (embedded defaults)."""
    required = path is not None or "PIVOICE_CONFIG" in os.environ
    file = config_path(str(path) if path is not None else None)
    try:
        text = file.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        # A ValueError, not an OSError: caught here so reload's `except ConfigError` sees it.
        raise ConfigError(f"{file} is not UTF-8 text (byte {exc.start} cannot be decoded)",
                          fix="save it as UTF-8 (e.g. `iconv -f latin1 -t utf-8`) and send SIGHUP or restart") from None
    except IsADirectoryError:
        raise ConfigError(f"config file {file} is a directory",
                          fix="point --config / PIVOICE_CONFIG at a file") from None
    except FileNotFoundError:
        if required:
            raise ConfigError(f"config file {file} does not exist",
                              fix="create it (install.sh writes the default) or point --config / "
                                  "PIVOICE_CONFIG at one") from None
        return Config()
    except OSError as exc:
        raise ConfigError(f"cannot read config file {file}: {exc.strerror}",
                          fix="check its permissions (the service user must be able to read it)") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{file} is not valid TOML: {scrub(str(exc))}",
                          fix="fix the syntax and send SIGHUP or restart") from None
    except RecursionError:
        raise ConfigError(f"{file}: arrays or tables nested too deeply to read",
                          fix=f"no setting needs more than {MAX_DEPTH} levels; flatten it") from None
    return parse(data, source=str(file))


def parse(data: dict[str, Any], *, source: str = "(config)") -> Config:
    if configcheck.depth(data) > MAX_DEPTH:
        raise ConfigError(f"{source}: arrays or tables nested more than {MAX_DEPTH} levels deep",
                          fix="no setting needs that; flatten it")
    reader = _Reader(data, source)
    try:
        return reader.config()
    except (ValueError, TypeError) as exc:  # a settings dataclass refused a value
        raise ConfigError(f"{source}: {scrub(str(exc))}") from None


class _Reader:
    SECTIONS = ("realtime", "audio", "turns", "gpio", "hardware", "control", "tools", "metrics", "wake")

    def __init__(self, data: dict[str, Any], source: str) -> None:
        self.data = data
        self.source = source
        for key in data:
            if key not in self.SECTIONS:
                self.fail(f"[{key}]", f"unknown section; known: {', '.join(self.SECTIONS)}")

    def fail(self, key: str, why: str, fix: str | None = None) -> NoReturn:
        # Values are echoed to help the admin, but never anything shaped like a key.
        raise ConfigError(scrub(f"{self.source}: {key}: {why}"), fix=fix)

    def section(self, name: str, allowed: tuple[str, ...]) -> dict[str, Any]:
        table: dict[str, Any] = self.data.get(name, {})
        if not isinstance(table, dict):
            self.fail(f"[{name}]", "must be a table")
        for key in table:
            if key in ("device_token", "pivoice_device_token"):
                self.fail(f"[{name}] {key}", "the device token does not belong in the config file; set "
                          "PIVOICE_DEVICE_TOKEN or the systemd credential 'pivoice_device_token'")
            if key in ("api_key", "key", "openai_api_key"):
                self.fail(f"[{name}] {key}", "the API key does not belong in the config file; set OPENAI_API_KEY "
                          "or the systemd credential 'openai_api_key' (install.sh --key-file)")
            if key not in allowed:
                self.fail(f"[{name}] {key}", f"unknown key; known: {', '.join(allowed)}")
        return table

    def typed(self, section: str, table: dict[str, Any], key: str, kind: type | tuple[type, ...], default: Any,
              prefix: str = "") -> Any:
        if key not in table:
            return default
        value = table[key]
        key = prefix + key  # as the admin wrote it (vad_ settings are read from a stripped table)
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or (isinstance(value, bool) and kind in (int, float)):
            names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
            self.fail(f"[{section}] {key}", f"must be a {names}, not {value!r}")
        if isinstance(value, float) and not math.isfinite(value):
            self.fail(f"[{section}] {key}", f"must be a finite number, not {value!r}")
        return value

    def within(self, key: str, value: float, low: float, high: float, unit: str = "") -> None:
        """Fail unless ``low <= value <= high`` (numbers are finite here, see :meth:`typed`)."""
        if not low <= value <= high:
            self.fail(key, f"{value!r} is out of range: use {low:g} to {high:g}{unit}")

    def fill(self, section: str, cls: type, table: dict[str, Any], defaults: T, skip: tuple[str, ...] = (),
             prefix: str = "") -> T:
        """Read the plain fields of a settings dataclass from one table."""
        values = {}
        for f in fields(cls):
            if f.name in skip or f.name not in table:
                continue
            default = getattr(defaults, f.name)
            kind: Any = type(default) if default is not None else str
            if isinstance(default, (Dialect, EchoGuard, TurnMode)):
                kind = str
            values[f.name] = self.typed(section, table, f.name, kind, default, prefix)
        return replace(defaults, **values)

    def choice(self, section: str, key: str, value: str, enum: Any) -> Any:
        try:
            return enum(value)
        except ValueError:
            self.fail(f"[{section}] {key}", f"{value!r} is not one of {', '.join(e.value for e in enum)}")

    # ------------------------------------------------------------------- sections
    def config(self) -> Config:
        hw = self.section("hardware", ("preset",))
        board = preset(self.typed("hardware", hw, "preset", str, "generic"), key="[hardware] preset")
        return Config(realtime=self.realtime(), audio=self.audio(board), turns=self.turns(), gpio=self.gpio(board),
                      preset=board.name, control=self.control(), tools=self.tools(), metrics=self.metrics(),
                      wake=read_wake(self), source=self.source)

    def realtime(self) -> RealtimeConfig:
        table = self.section("realtime", tuple(f.name for f in fields(RealtimeConfig)))
        rt = self.fill("realtime", RealtimeConfig, table, RealtimeConfig())
        rt = replace(rt, dialect=self.choice("realtime", "dialect", str(rt.dialect), Dialect))
        rt = self.live(rt, table)
        self.check("[realtime] url", configcheck.key_in_url_problem(rt.url))
        if not rt.simulator:  # the built-in simulator does not use the URL
            self.check("[realtime] url", configcheck.url_problem(rt.url, ("ws", "wss")))
        if rt.reasoning_effort not in REASONING_EFFORTS:
            self.fail("[realtime] reasoning_effort",
                      f"{rt.reasoning_effort!r} is not one of {', '.join(REASONING_EFFORTS)}")
        if rt.token_url:
            self.check("[realtime] token_url", configcheck.key_in_url_problem(rt.token_url))
            self.check("[realtime] token_url", configcheck.url_problem(rt.token_url, ("http", "https")))
        if rt.session_limit < 10:
            self.fail("[realtime] session_limit", "must be at least 10 seconds")
        self.within("[realtime] session_limit", rt.session_limit, 10, 24 * 3600, " seconds")
        self.within("[realtime] rotate_margin", rt.rotate_margin, 0, 3600, " seconds")
        self.within("[realtime] carry_turns", rt.carry_turns, 0, 1000)
        self.within("[realtime] fatal_retry", rt.fatal_retry, 1, 7 * 24 * 3600, " seconds")
        self.within("[realtime] simulator_speedup", rt.simulator_speedup, 0.1, 1000)
        return rt

    def live(self, rt: RealtimeConfig, table: dict[str, Any]) -> RealtimeConfig:
        """[realtime] api and the Live defaults: url and model follow the API unless set."""
        if rt.api not in ("realtime", "live"):
            self.fail("[realtime] api", f"{rt.api!r} is not one of realtime, live")
        self.within("[realtime] idle_close", rt.idle_close, 1, 24 * 3600, " seconds")
        if rt.api != "live":
            return rt
        from .live.models import VOICES

        if rt.token_url:
            self.fail("[realtime] token_url", "GPT-Live issues no client secrets; remove token_url "
                      "(the device holds the key) or use api = \"realtime\"")
        if rt.voice not in VOICES:
            self.fail("[realtime] voice",
                      f"{rt.voice!r} is not a GPT-Live voice; use one of {', '.join(sorted(VOICES))}")
        return replace(rt, url=table.get("url", LIVE_URL), model=table.get("model", LIVE_MODEL))

    def check(self, key: str, problem: configcheck.Problem) -> None:
        if problem is not None:
            self.fail(key, *problem)

    def audio(self, board: Any) -> AudioConfig:
        table = self.section("audio", tuple(f.name for f in fields(AudioConfig)))
        base = AudioConfig(input_device=board.input_device, output_device=board.output_device)
        audio = self.fill("audio", AudioConfig, table, base)
        audio = replace(audio, echo_guard=self.choice("audio", "echo_guard", str(audio.echo_guard), EchoGuard))
        if audio.echo_cancel not in ("auto", "webrtc", "speex", "off"):
            self.fail("[audio] echo_cancel", f"{audio.echo_cancel!r}: use \"auto\", \"webrtc\", \"speex\" or \"off\"")
        if audio.backend not in ("pyaudio", "simulated"):
            self.fail("[audio] backend", f"{audio.backend!r}: use \"pyaudio\" or \"simulated\"")
        if not 0 <= audio.volume <= 100:
            self.fail("[audio] volume", "must be from 0 to 100")
        self.within("[audio] mic_period_ms", audio.mic_period_ms, 10, 1000, " ms")
        self.within("[audio] idle_period_ms", audio.idle_period_ms, 10, 1000, " ms")
        self.within("[audio] prebuffer_ms", audio.prebuffer_ms, 0, 10_000, " ms")
        return audio

    def turns(self) -> TurnsConfig:
        vad_keys = tuple(f"vad_{f.name}" for f in fields(VadSettings))
        table = self.section("turns", ("mode", "silence_ms") + vad_keys)
        turns = self.fill("turns", TurnsConfig, table, TurnsConfig(), skip=("vad",))
        turns = replace(turns, mode=self.choice("turns", "mode", str(turns.mode), TurnMode))
        if turns.mode is TurnMode.CONTINUOUS:   # chosen by [realtime] api = "live", not a Realtime mode
            self.fail("[turns] mode", "\"continuous\" is what GPT-Live uses by itself; for the Realtime API use "
                      "server_vad, local_vad or push_to_talk (or set [realtime] api = \"live\")")
        self.within("[turns] silence_ms", turns.silence_ms, 100, 10_000, " ms")
        vad_table = {k[4:]: v for k, v in table.items() if k.startswith("vad_")}
        vad = self.fill("turns", VadSettings, vad_table, VadSettings(), prefix="vad_")
        for name in ("preroll_ms", "min_speech_ms", "hangover_ms", "barge_in_min_ms", "echo_learn_ms"):
            self.within(f"[turns] vad_{name}", getattr(vad, name), 0, 60_000, " ms")
        self.within("[turns] vad_echo_margin_db", vad.echo_margin_db, 0, 60, " dB")
        return replace(turns, vad=vad)

    def gpio(self, board: Any) -> GpioSettings:
        keys = ("pin_factory", "button_pin", "button_active_low", "leds", "led_pins", "led_active_high",
                "led_count", "brightness", "hold_s", "double_tap_s", "long_hold_s", "debounce_s")
        table = self.section("gpio", keys)
        factory = self.typed("gpio", table, "pin_factory", str, "auto")
        if factory not in FACTORIES:
            self.fail("[gpio] pin_factory", f"{factory!r} is not one of {', '.join(FACTORIES)}")
        button = table.get("button_pin", board.button_pin)
        if button is not None and (not isinstance(button, int) or isinstance(button, bool) or not 0 <= button <= 27):
            self.fail("[gpio] button_pin", f"{button!r} is not a BCM pin number (0-27)")
        leds = board.leds
        if any(k in table for k in ("leds", "led_pins", "led_active_high", "led_count")):
            pins = self.typed("gpio", table, "led_pins", list, list(leds.pins))
            if not all(isinstance(p, int) and 0 <= p <= 27 for p in pins):
                self.fail("[gpio] led_pins", f"{pins!r}: BCM pin numbers 0-27")
            leds = LedSpec(kind=self.typed("gpio", table, "leds", str, leds.kind if leds.kind != "none" else "gpio"),
                           pins=tuple(pins),
                           active_high=self.typed("gpio", table, "led_active_high", bool, leds.active_high),
                           count=self.typed("gpio", table, "led_count", int, leds.count),
                           power_pin=leds.power_pin, power_active_high=leds.power_active_high)
        if leds.count is not None and not isinstance(leds.count, bool) and isinstance(leds.count, int):
            self.within("[gpio] led_count", leds.count, 0, 1024)
        timing = GestureTiming(**{k: self.typed("gpio", table, k, float, getattr(GestureTiming(), k))
                                  for k in ("hold_s", "double_tap_s", "long_hold_s", "debounce_s")})
        for k in ("hold_s", "double_tap_s", "long_hold_s", "debounce_s"):
            self.within(f"[gpio] {k}", getattr(timing, k), 0, 60, " seconds")
        return GpioSettings(pin_factory=factory, button_pin=button,
                            button_active_low=self.typed("gpio", table, "button_active_low", bool,
                                                         board.button_active_low),
                            leds=leds, brightness=self.typed("gpio", table, "brightness", float, 0.5), timing=timing)

    def control(self) -> ControlConfig:
        table = self.section("control", ("socket",))
        path = self.typed("control", table, "socket", str, ControlConfig.socket)
        self.check("[control] socket", configcheck.socket_problem(path))
        return ControlConfig(socket=path)

    def metrics(self) -> MetricsConfig:
        table = self.section("metrics", ("listen",))
        listen = self.typed("metrics", table, "listen", str, MetricsConfig.listen).strip()
        self.check("[metrics] listen", configcheck.listen_problem(listen))
        return MetricsConfig(listen=listen)

    def tools(self) -> tuple[HttpToolConfig, ...]:
        from .toolsconfig import read_tools

        return read_tools(self, HttpToolConfig)
