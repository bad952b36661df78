"""How the app gets its devices: real ones from the config, or simulated twins."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from hardware.bridge import LoopBridge
from hardware.interfaces import AudioCallback, AudioSource, Leds, Microphone, Speaker

from . import config as cfg


@dataclass
class Hardware:
    """How the app gets its devices; tests and the demo pass simulated ones."""

    #: (on_audio, bridge) -> a microphone (not yet open)
    microphone: Callable[[AudioCallback, LoopBridge], Microphone]
    #: (read) -> a speaker (not yet open) that plays what ``read`` gives, at its own rate
    speaker: Callable[[AudioSource], Speaker]
    #: -> (leds, pin_factory or None, problem text or None)
    gpio: Callable[[], tuple[Leds, object | None, str | None]]


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
        # 48 kHz first: what USB devices and PulseAudio run at (no resampling outside the
        # process); the speaker pauses when idle instead of writing silence (README "Audio").
        lambda on_audio, bridge: audio.Microphone(config.audio.input_device, on_audio, bridge=bridge,
                                                  period_ms=config.audio.mic_period_ms, preferred_rate=48000),
        lambda read: audio.Speaker(config.audio.output_device, read, preferred_rate=48000, idle_pause_s=5.0),
        gpio)
