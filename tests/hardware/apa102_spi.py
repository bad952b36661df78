"""Run as a script by test_apa102.py: the ReSpeaker 2-mic preset's LEDs through the real
apa102-pi and Adafruit Blinka, down to the last Python layer above the kernel, whose SPI device
(Adafruit_PureIO.spi.SPI, the /dev/spidevB.D wrapper) is replaced by a recorder. Prints JSON:
the SPI device opened, and per device state the bytes written and the power pin's level.

A script, not a test: Blinka reads BLINKA_FORCEBOARD/BLINKA_FORCECHIP once at import, which
must happen in a fresh process (the caller sets them)."""

from __future__ import annotations

import json

import Adafruit_PureIO.spi as pure_spi

opened: list = []
written: list[int] = []


class RecordingSpi:
    """What Blinka calls on Linux SPI: the bytes go to a list instead of an ioctl."""

    def __init__(self, device, **_: object) -> None:
        opened.append(list(device))

    def writebytes(self, data, **_: object) -> None:
        written.extend(data)


pure_spi.SPI = RecordingSpi


def main() -> None:
    from device.config import GpioSettings
    from device.state import DeviceState
    from hardware.gpio import open_gpio
    from hardware.leds import PATTERNS, LedAnimator
    from hardware.presets import preset

    gpio = open_gpio(GpioSettings(pin_factory="mock", leds=preset("respeaker-2mic").leds, brightness=0.5))
    assert gpio.problem is None, gpio.problem
    power = gpio.pin_factory.pin(preset("respeaker-2mic").leds.power_pin)
    now = [0.0]
    animator = LedAnimator(gpio.leds, clock=lambda: now[0])
    frames = {}
    for state in (DeviceState.LISTENING, DeviceState.MUTED, DeviceState.OFFLINE, DeviceState.IDLE):
        del written[:]
        now[0] += 10
        animator.show(PATTERNS[state])  # blinks start "on": the frame shown is the colour
        frames[state.value] = {"bytes": list(written), "power_level": bool(power.state)}
    del written[:]
    animator.off()
    # the power pin's levels over the whole run (gpiozero's mock pin keeps them)
    frames["closed"] = {"bytes": list(written), "power_levels": [bool(s.state) for s in power.states]}
    print(json.dumps({"opened": opened, "frames": frames}))


if __name__ == "__main__":
    main()
