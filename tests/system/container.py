"""A Debian (bookworm or trixie; x86_64 or arm64) with systemd as PID 1, booted with
systemd-nspawn, for testing install.sh and the unit in a real systemd.

The debootstrapped root filesystems are cached in /var/cache/pivoice-test (``base`` for
bookworm, ``base-trixie``, ``base-bookworm-arm64``, ...; each built once per machine, ~60 s
natively, ~5 min for arm64 under qemu-user); each test run boots a fresh copy. Downloaded .deb files and pip's cache
are kept in /var/cache/pivoice-test too, so a second run installs without downloading.
The machine's own CA bundle is copied in, so HTTPS works behind the same proxy as the host.
Commands run inside through nsenter (``--register=no`` leaves machinectl out of it).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import time
from pathlib import Path

CACHE = Path(os.environ.get("PIVOICE_TEST_CACHE", "/var/cache/pivoice-test"))
BASE = CACHE / "base"
INCLUDE = "systemd,systemd-sysv,dbus,python3,ca-certificates,passwd,procps"
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def base_dir(suite: str = "bookworm", arch: str | None = None) -> Path:
    if suite == "bookworm" and arch is None:
        return BASE  # the name earlier runs cached it under
    return CACHE / f"base-{suite}" if arch is None else CACHE / f"base-{suite}-{arch}"


def enable_arm64_emulation() -> None:
    """binfmt_misc with qemu-aarch64 (flags F: the interpreter is opened now, so it works
    inside the container's root too). Needs qemu-user-static and binfmt-support."""
    binfmt = Path("/proc/sys/fs/binfmt_misc")
    if not (binfmt / "register").exists():
        subprocess.run(["mount", "-t", "binfmt_misc", "binfmt_misc", str(binfmt)], check=True)
    if not (binfmt / "qemu-aarch64").exists():
        subprocess.run(["update-binfmts", "--enable", "qemu-aarch64"], check=True, capture_output=True)


def ensure_base(suite: str = "bookworm", arch: str | None = None) -> Path:
    base = base_dir(suite, arch)
    CACHE.mkdir(parents=True, exist_ok=True)
    if arch is not None:
        enable_arm64_emulation()
    with open(CACHE / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (base / "usr/lib/systemd/systemd").exists():
            tmp = base.with_name(base.name + ".tmp")
            shutil.rmtree(tmp, ignore_errors=True)
            arch_args = [f"--arch={arch}"] if arch else []
            result = subprocess.run(["debootstrap", "--variant=minbase", *arch_args, f"--include={INCLUDE}", suite,
                                     str(tmp), "http://deb.debian.org/debian"], capture_output=True, text=True)
            if result.returncode != 0:
                raise RuntimeError(f"debootstrap {suite} {arch or ''} failed:\n{result.stdout[-3000:]}{result.stderr[-2000:]}")
            tmp.rename(base)
    return base


class Container:
    def __init__(self, root: Path, *, cache_tag: str = "") -> None:
        self.root = root
        self.cache_tag = cache_tag  # apt's .debs per suite and arch (pip's cache is keyed by itself)
        self.proc: subprocess.Popen | None = None
        self.leader = 0

    def boot(self, timeout: float = 120.0) -> None:
        apt = CACHE / f"apt{self.cache_tag}"
        for path in (apt, CACHE / "pip"):
            path.mkdir(exist_ok=True)
        self.proc = subprocess.Popen(
            ["systemd-nspawn", "-q", "--register=no", "--keep-unit", "-D", str(self.root), "-b",
             f"--bind={apt}:/var/cache/apt/archives", f"--bind={CACHE / 'pip'}:/root/.cache/pip"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            children = subprocess.run(["pgrep", "-P", str(self.proc.pid)], capture_output=True, text=True).stdout.split()
            if children:
                self.leader = int(children[0])
                state = self.sh("systemctl is-system-running", check=False).stdout.strip()
                if state in ("running", "degraded"):
                    return
            if self.proc.poll() is not None:
                raise RuntimeError(f"systemd-nspawn exited with {self.proc.returncode}")
            time.sleep(0.3)
        raise RuntimeError("the container did not finish booting")

    def sh(self, command: str, *, check: bool = True, env: dict[str, str] | None = None,
           timeout: float = 900) -> subprocess.CompletedProcess:
        exports = {"PATH": PATH, "HOME": "/root", "LANG": "C.UTF-8",
                   "PIP_CERT": "/etc/ssl/certs/ca-certificates.crt", **(env or {})}
        result = subprocess.run(["nsenter", "-t", str(self.leader), "-a", "--", "/usr/bin/env", "-i",
                                 *[f"{k}={v}" for k, v in exports.items()], "/bin/sh", "-c", command],
                                capture_output=True, text=True, timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(f"`{command}` exited {result.returncode}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
        return result

    def shutdown(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.sh("systemctl poweroff --no-block", check=False, timeout=30)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def fresh_root(workdir: Path, checkout: Path, suite: str = "bookworm", arch: str | None = None) -> Path:
    """A copy of the cached base with the checkout in /root/pivoice and the host's CA bundle."""
    root = workdir / "root"
    subprocess.run(["cp", "-a", "--reflink=auto", str(ensure_base(suite, arch)), str(root)], check=True)
    shutil.copy("/etc/ssl/certs/ca-certificates.crt", root / "etc/ssl/certs/ca-certificates.crt")
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=checkout, check=True,
                           capture_output=True).stdout.split(b"\0")
    target = root / "root/pivoice"
    for name in filter(None, files):
        src = checkout / name.decode()
        if src.is_file():
            dest = target / name.decode()
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest)
    return root
