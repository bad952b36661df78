#!/usr/bin/python3
"""PID 1 of a tiny initramfs booted by qemu-system-aarch64 -M raspi3b (tests/system/qemu_gpio.py).

Drives LED patterns on GPIO18 (the generic preset's LED) on the emulated BCM2835's
/dev/gpiochip0: first with lgpio's own calls, then through pivoice's LED code (LedAnimator,
GpioLeds) on gpiozero's lgpio pin factory. After each step the line is read back through the
kernel: the GPIO character device (lgpio's line request, GPIO_V2_LINE_GET_VALUES) and the
kernel's own table in debugfs. Prints one JSON line prefixed GPIO-RESULT, then powers off."""

import ctypes
import json
import os
import traceback

libc = ctypes.CDLL("libc.so.6", use_errno=True)
PIN = 18
PATTERN = [1, 0, 1, 1, 0, 1, 0, 0]  # a blink pattern, written in order


def mount(kind: str, target: str) -> None:
    os.makedirs(target, exist_ok=True)
    libc.mount(kind.encode(), target.encode(), kind.encode(), 0, None)


def kernel_view(pin: int) -> str:
    """The debugfs line for the pin: 'gpio-NNN (GPIO18 |lg) out hi'."""
    with open("/sys/kernel/debug/gpio") as table:
        return next((line.strip() for line in table if f"(GPIO{pin} " in line), "")


def main() -> dict:
    for kind, target in (("proc", "/proc"), ("sysfs", "/sys"), ("devtmpfs", "/dev"), ("debugfs", "/sys/kernel/debug")):
        mount(kind, target)
    import lgpio

    with open("/proc/device-tree/model") as model:
        board = model.read().strip("\0")
    result = {"model": board, "uname": os.uname().release,
              "chips": sorted(n for n in os.listdir("/dev") if n.startswith("gpiochip"))}
    handle = lgpio.gpiochip_open(0)
    result["chip_info"] = list(lgpio.gpio_get_chip_info(handle))
    lgpio.gpio_claim_output(handle, PIN, 0)
    steps = []
    for level in PATTERN:
        lgpio.gpio_write(handle, PIN, level)
        steps.append({"wrote": level, "read": lgpio.gpio_read(handle, PIN), "kernel": kernel_view(PIN)})
    result["steps"] = steps
    lgpio.gpio_free(handle, PIN)
    lgpio.gpiochip_close(handle)
    try:
        result["animator"] = through_pivoice()
    except Exception:  # noqa: BLE001 - reported, the lgpio part still counts
        result["animator_error"] = traceback.format_exc()
    return result


def through_pivoice() -> list:
    """The THINKING pattern (blink 0.2 s on, 0.2 s off) rendered by pivoice's animator on a
    clock we set, through gpiozero's LGPIOFactory: what the daemon does on a Pi 5."""
    from gpiozero.pins.lgpio import LGPIOFactory

    from device.state import DeviceState
    from hardware.leds import PATTERNS, GpioLeds, LedAnimator

    factory = LGPIOFactory(chip=0)
    leds = GpioLeds((PIN,), pwm=False, pin_factory=factory)
    now = [0.0]
    animator = LedAnimator(leds, clock=lambda: now[0])
    pattern = PATTERNS[DeviceState.THINKING]
    animator.show(pattern)
    steps = []
    for t in (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7):
        now[0] = t
        animator.render(t)
        steps.append({"t": t, "on": max(pattern.colour_at(t)) >= 0.5, "kernel": kernel_view(PIN)})
    animator.off()
    factory.close()
    return steps


if __name__ == "__main__":
    try:
        out = main()
    except Exception:  # noqa: BLE001 - PID 1 reports everything, then powers off
        out = {"error": traceback.format_exc()}
    print("GPIO-RESULT " + json.dumps(out), flush=True)
    libc.sync()
    libc.reboot(0x4321FEDC)  # RB_POWER_OFF
