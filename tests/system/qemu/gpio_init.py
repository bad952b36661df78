#!/usr/bin/python3
"""PID 1 of a tiny initramfs booted by qemu-system-aarch64 -M raspi3b (tests/system/qemu_gpio.py).

Drives an LED pattern on GPIO18 (the generic preset's LED) through lgpio on the emulated
BCM2835's /dev/gpiochip0, and after each step reads the line back through the kernel: the
GPIO character device (lgpio's line request, GPIO_V2_LINE_GET_VALUES) and the kernel's own
table in debugfs. Prints one JSON line prefixed GPIO-RESULT, then powers off."""

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

    result = {"model": open("/proc/device-tree/model").read().strip("\0"), "uname": os.uname().release,
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
    return result


if __name__ == "__main__":
    try:
        out = main()
    except Exception:  # noqa: BLE001 - PID 1 reports everything, then powers off
        out = {"error": traceback.format_exc()}
    print("GPIO-RESULT " + json.dumps(out), flush=True)
    libc.sync()
    libc.reboot(0x4321FEDC)  # RB_POWER_OFF
