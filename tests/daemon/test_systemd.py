"""sd_notify through a real NOTIFY_SOCKET, signals, and the watchdog tied to real liveness."""

from __future__ import annotations

import asyncio
import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from device.notify import Notifier, health_problems
from device.state import DeviceState

from ..sdnotify import NotifySocket

ROOT = Path(__file__).parents[2]


@pytest.fixture
def notify_socket(tmp_path):
    sock = NotifySocket(tmp_path / "notify")
    yield sock
    sock.sock.close()


def write_config(tmp_path: Path, **realtime: str) -> Path:
    path = tmp_path / "config.toml"
    extra = "".join(f"{k} = {v}\n" for k, v in realtime.items())
    path.write_text(f"""[realtime]
simulator = true
simulator_speedup = 8
{extra}
[audio]
backend = "simulated"

[gpio]
pin_factory = "mock"

[control]
socket = "{tmp_path / 'control.sock'}"

[metrics]
listen = ""
""")
    return path


def start_daemon(tmp_path: Path, notify: NotifySocket, config: Path) -> subprocess.Popen:
    env = {**os.environ, "NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": "1000000", "PYTHONUNBUFFERED": "1"}
    env.pop("OPENAI_API_KEY", None)
    return subprocess.Popen([sys.executable, "-m", "device.cli", "run", "--config", str(config)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_ready_status_watchdog_then_sigterm_stops_cleanly(tmp_path, notify_socket):
    daemon = start_daemon(tmp_path, notify_socket, write_config(tmp_path))
    try:
        ready = notify_socket.until("READY")
        assert ready["READY"] == "1" and int(ready["MAINPID"]) == daemon.pid
        status = notify_socket.until("STATUS")
        notify_socket.until("WATCHDOG")
        # The status line says what the device is doing once the session is up.
        while "session" not in status["STATUS"]:
            status = notify_socket.until("STATUS")
        assert status["STATUS"].startswith("idle; session sess_")
        assert "rotation in" in status["STATUS"]
        sock = tmp_path / "control.sock"
        mode = stat.S_IMODE(sock.stat().st_mode)
        assert mode & 0o002 == 0 and mode & 0o007 == 0          # not world-writable, not world-usable

        daemon.send_signal(signal.SIGTERM)
        stopping = notify_socket.until("STOPPING")
        assert stopping["STOPPING"] == "1"
        output, _ = daemon.communicate(timeout=30)
        assert daemon.returncode == 0, output
        assert not sock.exists()
        assert "stopped" in output
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.communicate()


def test_sighup_reloads_the_config_and_survives_a_broken_one(tmp_path, notify_socket):
    config = write_config(tmp_path)
    daemon = start_daemon(tmp_path, notify_socket, config)
    try:
        notify_socket.until("READY")
        write_config(tmp_path, instructions='"Speak like a pirate."')
        daemon.send_signal(signal.SIGHUP)
        notify_socket.until("RELOADING")
        assert notify_socket.until("READY")["READY"] == "1"

        config.write_text("[realtime\nbroken")
        daemon.send_signal(signal.SIGHUP)
        notify_socket.until("RELOADING")
        notify_socket.until("READY")          # still up, on the config it had
        notify_socket.until("WATCHDOG")
        daemon.send_signal(signal.SIGTERM)
        output, _ = daemon.communicate(timeout=30)
        assert daemon.returncode == 0
        assert "config reloaded" in output
        assert "reload failed, keeping the running config" in output and "not valid TOML" in output
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.communicate()


async def test_no_watchdog_pings_while_the_microphone_stalls(device_factory, tmp_path, notify_socket):
    notifier = Notifier({"NOTIFY_SOCKET": notify_socket.path, "WATCHDOG_USEC": "400000"})
    device = await device_factory(notifier=notifier)
    await device.wait_state(DeviceState.IDLE)
    await asyncio.to_thread(notify_socket.until, "WATCHDOG")
    assert device.app.health() == []

    device.mic.stall()
    await device.wait_for(lambda: device.app.health(), "the stall to be noticed", timeout=30)
    assert "no microphone frames" in device.app.health()[0]
    await asyncio.to_thread(notify_socket.drain)
    await asyncio.sleep(1.2)  # three watchdog intervals (a window to look in, not a speed check)
    assert not any("WATCHDOG" in m for m in await asyncio.to_thread(notify_socket.drain))

    device.mic.stall(False)
    await device.wait_for(lambda: not device.app.health(), "frames to flow again", timeout=30)
    await asyncio.to_thread(notify_socket.until, "WATCHDOG")


def test_health_rules():
    ok = dict(now=100.0, last_mic_frame=99.5, started=0.0, link="up", link_open=True, playback_active=False,
              last_speaker_write=0.0, audio_problem=None)
    assert health_problems(**ok) == []
    assert health_problems(**{**ok, "last_mic_frame": 90.0}) == ["no microphone frames for 10.0 s"]
    # A missing microphone being retried is reported elsewhere, not a hang.
    assert health_problems(**{**ok, "last_mic_frame": 90.0, "audio_problem": "microphone: gone"}) == []
    # Backing off is alive; an "up" link that is closed is not.
    assert health_problems(**{**ok, "link": "backoff", "link_open": False}) == []
    assert health_problems(**{**ok, "link_open": False})
    assert health_problems(**{**ok, "playback_active": True, "last_speaker_write": 95.0}) == \
        ["playback stalled for 5.0 s"]
    # Just started: nothing has had time to arrive yet.
    assert health_problems(**{**ok, "now": 1.0, "last_mic_frame": 0.0, "started": 0.5}) == []


def test_notifier_without_systemd_does_nothing():
    notifier = Notifier({})
    assert not notifier.enabled and notifier.watchdog_interval_s is None
    assert notifier.ready("x") is False
