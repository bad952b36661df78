"""Boot a Debian arm64 kernel on QEMU's emulated Raspberry Pi 3B (``-M raspi3b``: BCM2835 GPIO
as /dev/gpiochip0) with a tiny initramfs whose PID 1 is gpio_init.py, and return its report.

The pieces, all real: Debian's arm64 kernel package (fetched with apt inside the cached arm64
root filesystem, under qemu-user), its bcm2837-rpi-3-b.dtb with the board revision a Pi's
firmware would add (/system/linux,revision; gpiozero identifies the board from it), the arm64
Python of that root filesystem, lgpio/gpiozero/colorzero wheels for aarch64 from PyPI, and
pivoice's own LED modules from this checkout. Host needs: qemu-system-arm, qemu-user-static,
binfmt-support, debootstrap, device-tree-compiler.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

from ..container import ensure_base
from .cpio import write_initramfs

HERE = Path(__file__).parent
CHECKOUT = HERE.parents[2]
PI3B_REVISION = "a02082"  # Raspberry Pi 3 Model B rev 1.2
LIBS = ("libc.so.6", "libm.so.6", "libz.so.1", "libexpat.so.1", "libffi.so.8", "ld-linux-aarch64.so.1")
DROP = ("test", "idlelib", "tkinter", "ensurepip", "lib2to3", "pydoc_data")


def _run(*args: str, **kw) -> str:
    return subprocess.run(args, check=True, capture_output=True, text=True, **kw).stdout


def kernel_and_dtb(work: Path, base: Path) -> tuple[Path, Path]:
    root = work / "kroot"
    _run("cp", "-a", "--reflink=auto", str(base), str(root))
    shutil.copy("/etc/ssl/certs/ca-certificates.crt", root / "etc/ssl/certs/ca-certificates.crt")
    shutil.copy("/etc/resolv.conf", root / "etc/resolv.conf")
    _run("chroot", str(root), "apt-get", "update", "-qq")
    image = next(line.split()[-1] for line in _run("chroot", str(root), "apt-cache", "depends", "linux-image-arm64")
                 .splitlines() if "Depends: linux-image-" in line)
    _run("chroot", str(root), "sh", "-c", f"cd /tmp && apt-get download -qq {image}")
    deb = next((root / "tmp").glob(f"{image}_*.deb"))
    _run("dpkg-deb", "-x", str(deb), str(work / "kernel"))
    kernel = next((work / "kernel/boot").glob("vmlinuz-*"))
    dtb = work / "rpi3b.dtb"
    shutil.copy(next((work / "kernel/usr/lib").glob("linux-image-*/broadcom/bcm2837-rpi-3-b.dtb")), dtb)
    _run("fdtput", "-c", str(dtb), "/system")
    _run("fdtput", "-t", "x", str(dtb), "/system", "linux,revision", PI3B_REVISION)
    shutil.rmtree(root)
    return kernel, dtb


def initramfs(work: Path, base: Path) -> Path:
    tree = work / "initramfs"
    python = max((p.name for p in (base / "usr/bin").glob("python3.*") if p.name[8:].isdigit()),
                 key=lambda name: int(name[8:]))
    (tree / "usr/bin").mkdir(parents=True)
    (tree / "usr/lib/aarch64-linux-gnu").mkdir(parents=True)
    (tree / "bin").symlink_to("usr/bin")
    (tree / "lib").symlink_to("usr/lib")
    shutil.copy2(base / "usr/bin" / python, tree / "usr/bin" / python)
    (tree / "usr/bin/python3").symlink_to(python)
    for lib in LIBS:
        shutil.copy(base / "usr/lib/aarch64-linux-gnu" / lib, tree / "usr/lib/aarch64-linux-gnu" / lib)
    # the program interpreter named in every arm64 binary
    (tree / "usr/lib/ld-linux-aarch64.so.1").symlink_to("aarch64-linux-gnu/ld-linux-aarch64.so.1")
    shutil.copytree(base / "usr/lib" / python, tree / "usr/lib" / python, symlinks=True,
                    ignore=shutil.ignore_patterns(*DROP, "config-*", "__pycache__"))
    site = tree / "opt/pivoice"
    wheels = work / "wheels"
    _run(sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", "--python-version",
         python[6:], *[f"--platform=manylinux_2_{n}_aarch64" for n in (17, 28, 34, 36)], "-d", str(wheels),
         "lgpio", "gpiozero", "colorzero")
    for wheel in wheels.glob("*.whl"):
        zipfile.ZipFile(wheel).extractall(site)
    for package, modules in (("device", ("__init__", "errors", "state")), ("hardware", ("__init__", "leds"))):
        (site / package).mkdir(parents=True, exist_ok=True)
        for module in modules:
            shutil.copy(CHECKOUT / package / f"{module}.py", site / package / f"{module}.py")
    shutil.copy(HERE / "gpio_init.py", tree / "init")
    (tree / "init").chmod(0o755)
    image = work / "initrd.gz"
    write_initramfs(tree, image)
    return image


def boot(work: Path, *, timeout_s: float = 600) -> tuple[dict, float]:
    """Build and boot; (the report of gpio_init.py, seconds from QEMU start to the report)."""
    base = ensure_base("bookworm", "arm64")
    kernel, dtb = kernel_and_dtb(work, base)
    image = initramfs(work, base)
    # Unknown key=value words on the kernel command line become PID 1's environment. Python
    # must not wait for entropy this early (PYTHONHASHSEED); no firmware means no reboot: the
    # guest halts and QEMU is stopped here once the report is in.
    cmdline = "console=ttyAMA0,115200 rdinit=/init panic=-1 quiet PYTHONHASHSEED=0 PYTHONPATH=/opt/pivoice"
    started = time.monotonic()
    qemu = subprocess.Popen(["qemu-system-aarch64", "-M", "raspi3b", "-kernel", str(kernel), "-dtb", str(dtb),
                             "-initrd", str(image), "-append", cmdline, "-nographic", "-no-reboot"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    log = []
    watchdog = threading.Timer(timeout_s, qemu.kill)  # a guest that hangs ends the read below
    watchdog.start()
    try:
        for raw in qemu.stdout:
            line = raw.decode("utf-8", "replace")
            log.append(line)
            if line.startswith("GPIO-RESULT "):
                return json.loads(line.split(" ", 1)[1]), time.monotonic() - started
            if "Kernel panic" in line:
                break
    finally:
        watchdog.cancel()
        qemu.kill()
        qemu.wait()
    raise AssertionError("no GPIO-RESULT from the guest:\n" + "".join(log[-60:]))
