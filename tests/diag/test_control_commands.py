"""`pivoice mute | unmute | talk | new-conversation` against a real daemon (simulated hardware,
built-in simulator) over its control socket; `pivoice --version`; the LICENSE."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from ..sdnotify import NotifySocket

ROOT = Path(__file__).parents[2]
PIVOICE = [sys.executable, "-m", "device.cli"]


def pivoice(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*PIVOICE, *args], check=False, cwd=ROOT, capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def ptt_daemon(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ptt")
    sock = tmp / "control.sock"
    config = tmp / "config.toml"
    config.write_text('[realtime]\nsimulator = true\nsimulator_speedup = 8\n[audio]\nbackend = "simulated"\n'
                      '[turns]\nmode = "push_to_talk"\n[gpio]\npin_factory = "mock"\n'
                      f'[control]\nsocket = "{sock}"\n[metrics]\nlisten = ""\n')
    notify = NotifySocket(tmp / "notify")      # it tells systemd its state: wait for "idle" there
    proc = subprocess.Popen([*PIVOICE, "run", "--config", str(config)], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env={**os.environ, "NOTIFY_SOCKET": notify.path})
    try:
        notify.until("STATUS", timeout=60, value_starts="idle")
    except AssertionError:
        proc.kill()
        raise
    yield config
    proc.terminate()
    proc.wait(20)
    notify.close()


def status(config: Path) -> dict:
    result = pivoice("status", "--json", "--config", str(config))
    return json.loads(result.stdout) if result.returncode == 0 else {}


def test_mute_and_unmute(ptt_daemon):
    muted = pivoice("mute", "--config", str(ptt_daemon))
    assert (muted.returncode, muted.stdout.strip()) == (0, "microphone muted")
    assert status(ptt_daemon)["muted"] is True and status(ptt_daemon)["state"] == "muted"
    unmuted = pivoice("unmute", "--config", str(ptt_daemon))
    assert (unmuted.returncode, unmuted.stdout.strip()) == (0, "microphone on")
    assert status(ptt_daemon)["muted"] is False and status(ptt_daemon)["state"] == "idle"


def test_talk_starts_and_ends_a_turn(ptt_daemon):
    events = subprocess.Popen([*PIVOICE, "events", "--config", str(ptt_daemon), "--json", "--kinds", "state",
                               "--count", "2"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert "following the daemon's events" in events.stderr.readline()   # subscribed before the turn starts
    on = pivoice("talk", "--config", str(ptt_daemon))
    assert on.returncode == 0 and on.stdout.startswith("talking"), on.stdout + on.stderr
    off = pivoice("talk", "--off", "--config", str(ptt_daemon))
    assert off.returncode == 0 and off.stdout.startswith("talk ended"), off.stdout + off.stderr
    states = [json.loads(line)["state"] for line in events.communicate(timeout=60)[0].splitlines()]
    assert states[0] == "listening"


def test_new_conversation(ptt_daemon):
    events = subprocess.Popen([*PIVOICE, "events", "--config", str(ptt_daemon), "--json", "--kinds", "new_conversation",
                               "--count", "1"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert "following the daemon's events" in events.stderr.readline()
    result = pivoice("new-conversation", "--config", str(ptt_daemon))
    assert result.returncode == 0 and result.stdout.startswith("new conversation"), result.stdout + result.stderr
    assert json.loads(events.communicate(timeout=60)[0])["kind"] == "new_conversation"


def test_control_commands_without_a_daemon_say_so(tmp_path):
    config = tmp_path / "c.toml"
    config.write_text(f'[control]\nsocket = "{tmp_path / "absent.sock"}"\n')
    for args in (["mute"], ["unmute"], ["talk"], ["talk", "--off"], ["new-conversation"]):
        result = pivoice(*args, "--config", str(config))
        assert result.returncode == 3 and "daemon is not running" in result.stderr, args


def test_version_is_the_package_version():
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    result = pivoice("--version")
    assert (result.returncode, result.stdout.strip()) == (0, f"pivoice {version}")


def test_license_is_mit_as_pyproject_says():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == "MIT" and project["license-files"] == ["LICENSE"]   # an SPDX expression
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License") and "WITHOUT WARRANTY OF ANY KIND" in text


@pytest.mark.parametrize("command", ["mute", "unmute", "talk", "new-conversation"])
def test_each_new_command_has_help(command):
    result = pivoice(command, "--help")
    assert result.returncode == 0 and f"usage: pivoice {command}" in result.stdout
