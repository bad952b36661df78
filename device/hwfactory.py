"""How the app gets its devices: real ones from the config, or simulated twins."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hardware.bridge import LoopBridge
from hardware.leds import Leds

from . import config as cfg
from .audio.pipeline import API_RATE


@dataclass
class Hardware:
    """How the app gets its devices; tests and the demo pass simulated ones."""

    #: (on_audio, bridge) -> a microphone (open/close/active)
    microphone: Callable[[Callable[[bytes, bool], None], LoopBridge], Any]
    #: (read) -> a speaker reading 24 kHz mono PCM16 (open/close/alive/last_write)
    speaker: Callable[[Callable[[int], bytes]], Any]
    #: -> (leds, pin_factory or None, problem text or None)
    gpio: Callable[[], tuple[Leds, object | None, str | None]]
    mic_rate: int | None = None  # None: ask the microphone after it opened


def real_hardware(config: cfg.Config) -> Hardware:
    from hardware import audio
    from hardware.gpio import open_gpio
    from hardware.sim import SimMicrophone, SimSpeaker

    def gpio() -> tuple[Leds, object | None, str | None]:
        opened = open_gpio(config.gpio)
        return opened.leds, opened.pin_factory, str(opened.problem) if opened.problem else None

    if config.audio.backend == "simulated":
        return Hardware(lambda on_audio, bridge: SimMicrophone(on_audio, period_ms=config.audio.mic_period_ms),
                        lambda read: SimSpeaker(read, keep_s=10.0), gpio)
    return Hardware(
        lambda on_audio, bridge: audio.Microphone(config.audio.input_device, on_audio, bridge=bridge,
                                                  period_ms=config.audio.mic_period_ms),
        lambda read: audio.Speaker(config.audio.output_device, read, source_rate=API_RATE),
        gpio)
