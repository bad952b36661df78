"""install.sh's argument handling and --dry-run, run for real on this machine (not a Pi, no
systemd as PID 1 here): the plan is printed anywhere and nothing is changed. The install itself
is proven in a booted systemd (tests/system)."""

from __future__ import annotations

import os
import pwd
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]


def install(*args: str, user: str | None = None, prefix: Path) -> subprocess.CompletedProcess:
    command = [str(ROOT / "install.sh"), *args]
    if user:
        command = ["runuser", "-u", user, "--", *command]
    return subprocess.run(command, check=False, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PIVOICE_PREFIX": str(prefix), "OPENAI_API_KEY": ""})


def test_purge_without_uninstall_is_a_usage_error_and_removes_nothing(tmp_path):
    prefix = tmp_path / "opt"
    prefix.mkdir()
    (prefix / "keep").write_text("x")
    result = install("--purge", prefix=prefix)
    assert result.returncode == 2
    assert "usage error" in result.stderr and "--uninstall --purge" in result.stderr
    assert (prefix / "keep").exists() and result.stdout == ""


def test_dry_run_prints_the_whole_plan_anywhere_and_changes_nothing(tmp_path):
    if os.path.isdir("/run/systemd/system"):
        pytest.skip("this machine runs systemd: the no-systemd warning cannot be shown here")
    user = "nobody" if "nobody" in {p.pw_name for p in pwd.getpwall()} else None
    prefix = tmp_path / "opt"
    result = install("--dry-run", "--preset", "respeaker-2mic", user=user, prefix=prefix)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    if user:
        assert "warning: run as root" in out
    assert "warning: systemd is not running here" in out and "(a real run stops here)" in out
    for step in ("pip install", f"{prefix}/venv", "/etc/pivoice/config.toml", "/etc/systemd/system/pivoice.service",
                 "systemctl enable --quiet pivoice", "systemctl start pivoice"):
        assert step in out, step
    assert "[audio,systemd,aec,wake,apa102]" in out  # the preset's LED library
    assert "step(s) above would change this machine" in out
    assert not prefix.exists()


def test_uninstall_dry_run_shows_what_purge_would_remove(tmp_path):
    result = install("--uninstall", "--purge", "--dry-run", prefix=tmp_path / "opt")
    assert result.returncode == 0, result.stderr
    assert f"would run: rm -rf {tmp_path / 'opt'}" in result.stdout
    assert "would run: rm -rf /etc/pivoice /var/lib/pivoice" in result.stdout
