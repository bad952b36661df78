"""Choosing the GPIO pin factory, and opening the LEDs and button without letting GPIO trouble
stop the device.

``[gpio] pin_factory``: ``auto`` reads the board model and picks gpiozero's lgpio factory on a
Pi 5 (RPi.GPIO cannot drive the Pi 5's RP1 chip, field notes item 18) and RPi.GPIO on older
Pis; off a Pi it falls back to mock pins with a warning. ``rpigpio``, ``lgpio`` and ``mock``
force a choice. A library that is missing or a GPIO chip that cannot be opened (not in the
``gpio`` group) is :class:`~device.errors.GpioUnavailable`: :func:`open_gpio` then logs the
cause and the fix and the device carries on with no LEDs and no button.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from .errors import GpioUnavailable, SettingError
from .gestures import GestureTiming
from .leds import Apa102Strip, GpioLeds, Leds, NullLeds, RgbLed
from .presets import LedSpec

logger = logging.getLogger(__name__)
MODEL_FILE = Path("/proc/device-tree/model")
FACTORIES = ("auto", "rpigpio", "lgpio", "mock")


@dataclass(frozen=True)
class GpioSettings:
    pin_factory: str = "auto"
    button_pin: int | None = 17
    button_active_low: bool = True
    leds: LedSpec = field(default_factory=LedSpec)
    brightness: float = 0.5
    timing: GestureTiming = field(default_factory=GestureTiming)

    def __post_init__(self) -> None:
        if self.pin_factory not in FACTORIES:
            raise SettingError(f"[gpio] pin_factory = {self.pin_factory!r}: use one of {', '.join(FACTORIES)}")
        if not 0 <= self.brightness <= 1:
            raise SettingError(f"[gpio] brightness = {self.brightness}: use a number from 0 to 1")


def board_model(path: Path = MODEL_FILE) -> str | None:
    try:
        return path.read_text(errors="replace").strip("\x00\n ")
    except OSError:
        return None


def choose_factory(name: str, model: str | None) -> str:
    """The concrete factory for a configured name on a board (``model`` None: not a Pi)."""
    if name != "auto":
        return name
    if not model or "Raspberry Pi" not in model:
        return "mock"
    return "lgpio" if "Raspberry Pi 5" in model or "Compute Module 5" in model else "rpigpio"


def make_pin_factory(name: str, *, model_path: Path = MODEL_FILE) -> object:
    model = board_model(model_path)
    chosen = choose_factory(name, model)
    if chosen == "mock":
        from gpiozero.pins.mock import MockFactory, MockPWMPin

        if name == "auto":
            logger.warning("not a Raspberry Pi (%s): GPIO is simulated with mock pins", model or "no board model")
        return MockFactory(pin_class=MockPWMPin)
    if chosen == "rpigpio":
        return _open("RPi.GPIO", "gpiozero.pins.rpigpio", "RPiGPIOFactory",
                     "apt install python3-rpi.gpio (Pi 4 and older); on a Pi 5 set pin_factory = \"lgpio\"")
    return _open("lgpio", "gpiozero.pins.lgpio", "LGPIOFactory", "apt install python3-lgpio (or pip install lgpio)")


def _open(library: str, module: str, cls: str, install: str) -> object:
    import importlib

    try:
        factory_cls = getattr(importlib.import_module(module), cls)
        return factory_cls()
    except ImportError as exc:
        raise GpioUnavailable(f"the {library} library is not installed ({exc.name})", fix=install) from None
    except PermissionError as exc:
        raise GpioUnavailable(f"no permission to use GPIO ({exc})") from None
    except Exception as exc:  # RPi.GPIO: RuntimeError; lgpio: lgpio.error ('can not open gpiochip')
        raise GpioUnavailable(f"{library} cannot open the GPIO chip: {exc}",
                              fix="run on a Raspberry Pi, and add the service user to the gpio group "
                                  "(or set [gpio] pin_factory = \"mock\")") from None


def make_leds(spec: LedSpec, *, brightness: float, pin_factory: object) -> Leds:
    if spec.kind == "none":
        return NullLeds()
    if spec.kind == "gpio":
        return GpioLeds(spec.pins, active_high=spec.active_high, brightness=brightness, pin_factory=pin_factory)
    if spec.kind == "rgb":
        if len(spec.pins) != 3:
            raise SettingError(f"[gpio] led_pins = {list(spec.pins)}: an RGB LED needs three pins (red, green, blue)")
        return RgbLed(spec.pins, active_high=spec.active_high, brightness=brightness, pin_factory=pin_factory)  # type: ignore[arg-type]
    if spec.kind == "apa102":
        return Apa102Strip(spec.count, brightness=brightness, power_pin=spec.power_pin,
                           power_active_high=spec.power_active_high, pin_factory=pin_factory)
    raise SettingError(f"[gpio] leds = {spec.kind!r}: use none, gpio, rgb or apa102")


@dataclass
class Gpio:
    """What :func:`open_gpio` could open. ``problem`` says why something is missing."""

    leds: Leds
    pin_factory: object | None
    problem: GpioUnavailable | None = None


def open_gpio(settings: GpioSettings, *, model_path: Path = MODEL_FILE) -> Gpio:
    """Open the pin factory and the LEDs; on GPIO trouble log it and return what still works."""
    try:
        factory = make_pin_factory(settings.pin_factory, model_path=model_path)
    except GpioUnavailable as problem:
        logger.error("no GPIO: %s. The device runs without LEDs and button.", problem)
        return Gpio(NullLeds(), None, problem)
    try:
        leds = make_leds(settings.leds, brightness=settings.brightness, pin_factory=factory)
    except GpioUnavailable as problem:
        logger.error("no LEDs: %s. The device runs without them.", problem)
        return Gpio(NullLeds(), factory, problem)
    return Gpio(leds, factory)
