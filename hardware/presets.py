"""HAT presets: the button pin, the LEDs and the ALSA device names of supported boards.

Pins are BCM numbers. Sources: the AIY pinout (button GPIO23 on both boards, the Voice HAT's
button LED on GPIO25; the Voice Bonnet's RGB LED sits on an I2C driver and is not driven here),
the ReSpeaker HATs (user button GPIO17; APA102 LEDs on SPI0, powered through GPIO12 (active low)
on the 2-mic HAT and GPIO5 on the 4-mic array).
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import SettingError


@dataclass(frozen=True)
class LedSpec:
    kind: str = "none"                  # none | gpio | rgb | apa102
    pins: tuple[int, ...] = ()
    active_high: bool = True
    count: int = 0                      # apa102 only
    power_pin: int | None = None        # apa102 only
    power_active_high: bool = True


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    button_pin: int | None
    leds: LedSpec
    #: "default", a PortAudio device name, or "card:ID": the sound card by ALSA card id (hardware.cards).
    input_device: str = "default"
    output_device: str = "default"
    button_active_low: bool = True      # a button to ground with the Pi's pull-up


PRESETS = {p.name: p for p in (
    Preset("generic", "a button from GPIO17 to ground, an LED (with resistor) on GPIO18 (PWM)",
           button_pin=17, leds=LedSpec("gpio", (18,))),
    Preset("respeaker-2mic", "Seeed ReSpeaker 2-Mics Pi HAT",
           button_pin=17, leds=LedSpec("apa102", count=3, power_pin=12, power_active_high=False),
           input_device="card:seeed2micvoicec", output_device="card:seeed2micvoicec"),
    Preset("respeaker-4mic", "Seeed ReSpeaker 4-Mic Array for Raspberry Pi (no speaker output, no button)",
           button_pin=None, leds=LedSpec("apa102", count=12, power_pin=5),
           input_device="card:seeed4micvoicec"),
    Preset("aiy-voicehat", "Google AIY Voice HAT (Voice Kit v1)",
           button_pin=23, leds=LedSpec("gpio", (25,)),
           input_device="card:sndrpigooglevoi", output_device="card:sndrpigooglevoi"),
    Preset("aiy-voicebonnet", "Google AIY Voice Bonnet (Voice Kit v2); its LED is not driven",
           button_pin=23, leds=LedSpec("none"),
           input_device="card:aiyvoicebonnet", output_device="card:aiyvoicebonnet"),
)}


def preset(name: str, *, key: str = "[hardware] preset") -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        known = ", ".join(sorted(PRESETS))
        raise SettingError(f"{key} = {name!r} is not a known preset; use one of: {known}") from None
