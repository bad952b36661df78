"""GPIO through a real Linux kernel: QEMU's Raspberry Pi 3B (BCM2835 GPIO) boots Debian's arm64
kernel; an LED pattern driven through lgpio, and pivoice's LED animator through gpiozero's lgpio
factory, are read back through the kernel (the GPIO character device and debugfs).
Opt-in (PIVOICE_TEST_QEMU_GPIO=1): it builds an initramfs and boots an emulated Pi."""

from __future__ import annotations

import os
import shutil

import pytest

from .qemu import raspi

pytestmark = [pytest.mark.timeout(1800),
              pytest.mark.skipif(os.environ.get("PIVOICE_TEST_QEMU_GPIO") != "1",
                                 reason="boots an emulated Raspberry Pi: set PIVOICE_TEST_QEMU_GPIO=1")]


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    for tool in ("qemu-system-aarch64", "fdtput", "debootstrap", "update-binfmts"):
        assert shutil.which(tool), (f"{tool} is missing: apt install qemu-system-arm device-tree-compiler "
                                    "debootstrap qemu-user-static binfmt-support")
    result, seconds = raspi.boot(tmp_path_factory.mktemp("raspi3b"))
    print(f"raspi3b: boot to GPIO report {seconds:.0f} s")
    assert "error" not in result, result.get("error")
    return result


def test_the_guest_is_a_pi_with_the_bcm2835_gpio_chip(report):
    assert report["model"] == "Raspberry Pi 3 Model B"
    assert "gpiochip0" in report["chips"]
    assert report["chip_info"][1:] == [54, "gpiochip0", "pinctrl-bcm2835"]


def test_lgpio_writes_are_what_the_kernel_reads_back(report):
    for step in report["steps"]:
        level = "hi" if step["wrote"] else "lo"
        assert step["read"] == step["wrote"], step
        assert "(GPIO18" in step["kernel"] and "|lg" in step["kernel"] and step["kernel"].endswith(f"out {level}"), step
    assert [s["wrote"] for s in report["steps"]] == [1, 0, 1, 1, 0, 1, 0, 0]


def test_pivoice_blink_pattern_through_gpiozero_reaches_the_pin(report):
    assert "animator_error" not in report, report.get("animator_error")
    steps = report["animator"]
    assert [s["on"] for s in steps] == [True, True, False, False, True, True, False, False]  # 0.2 s on, 0.2 s off
    for step in steps:
        assert step["kernel"].endswith("out hi" if step["on"] else "out lo"), step
