"""``pivoice leds | button-test``: see every LED pattern; watch the button's gestures."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from hardware.buttons import PushButton
from hardware.gestures import GestureEvent
from hardware.gpio import make_leds, make_pin_factory
from hardware.leds import PATTERNS, LedAnimator

from ..config import Config
from ..errors import GpioUnavailable
from ..state import DeviceState


def leds(config: Config, *, seconds: float, pin_factory: object | None = None) -> int:
    factory = pin_factory or make_pin_factory(config.gpio.pin_factory)
    try:
        strip = make_leds(config.gpio.leds, brightness=config.gpio.brightness, pin_factory=factory)
    except Exception as exc:  # gpiozero: GPIOPinInUse and friends
        raise GpioUnavailable(f"cannot open the LEDs: {exc}",
                              fix="stop the daemon first (systemctl stop pivoice): it holds the pins") from None
    print(f"LEDs: {config.gpio.leds.kind} {list(config.gpio.leds.pins) or ''} (preset {config.preset})", flush=True)

    async def show() -> None:
        animator = LedAnimator(strip)
        task = asyncio.create_task(animator.run())
        try:
            for state in DeviceState:
                pattern = PATTERNS[state]
                print(f"  {state:<9} {pattern.kind}", flush=True)
                animator.show(pattern)
                await asyncio.sleep(seconds)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    asyncio.run(show())
    print("done: LEDs off")
    return 0


def button_test(config: Config, *, seconds: float, pin_factory: object | None = None,
                on_ready: Callable[[Any], None] | None = None) -> int:
    """``on_ready`` (a test hook) is called with the PushButton once it listens."""
    pin = config.gpio.button_pin
    if pin is None:
        print(f"no button configured (preset {config.preset}); set [gpio] button_pin")
        return 1
    factory = pin_factory or make_pin_factory(config.gpio.pin_factory)
    seen: list[str] = []

    def on_gesture(event: GestureEvent) -> None:
        seen.append(str(event.gesture))
        held = event.at - event.pressed_at
        print(f"{time.strftime('%H:%M:%S')}  {event.gesture:<11} (pressed {held:.2f} s before)", flush=True)

    async def watch() -> None:
        try:
            button = PushButton(pin, on_gesture, pin_factory=factory, active_low=config.gpio.button_active_low,
                                timing=config.gpio.timing)
        except Exception as exc:
            raise GpioUnavailable(f"cannot open the button on GPIO{pin}: {exc}",
                                  fix="stop the daemon first (systemctl stop pivoice): it holds the pin") from None
        print(f"press the button on GPIO{pin} (tap, double tap, hold, long hold); {seconds:g} s", flush=True)
        task = asyncio.create_task(button.run())
        if on_ready:
            on_ready(button)
        try:
            await asyncio.sleep(seconds)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    asyncio.run(watch())
    print(f"{len(seen)} gesture(s) recognised" + ("" if seen else ": no press seen; check the wiring and the pin"))
    return 0 if seen else 1
