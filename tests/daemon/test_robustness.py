"""The daemon process under a careless admin: SIGHUP with config values that cannot work (it
keeps its config and says READY=1 again), SIGTERM with `pivoice events` attached (no ERROR)."""

from __future__ import annotations

import json
import select
import signal
import subprocess
import sys
import time

from device import control

from .test_systemd import ROOT, notify_socket, start_daemon, write_config  # noqa: F401 - the fixture

BAD_FILES = [
    b"[realtime]\nsimulator = true\ninstructions = \"caf\xe9\"\n",          # not UTF-8
    b"[realtime]\nurl = \"wss://api.openai.com:99999/v1/realtime\"\n",       # port out of range
    b"[realtime]\nsimulator = true\nrotate_margin = nan\n",                  # not a number
    b"a = " + b"[" * 50_000 + b"]" * 50_000 + b"\n",                        # nested too deep
]


def test_each_failed_reload_keeps_the_running_config_and_says_ready(tmp_path, notify_socket):
    config = write_config(tmp_path)
    good = config.read_bytes()
    daemon = start_daemon(tmp_path, notify_socket, config)
    try:
        notify_socket.until("READY")
        for bad in BAD_FILES:
            config.write_bytes(bad)
            daemon.send_signal(signal.SIGHUP)
            notify_socket.until("RELOADING")
            assert notify_socket.until("READY")["READY"] == "1"
        status = control.request(str(tmp_path / "control.sock"), {"cmd": "status"})
        assert status["ok"] and json.dumps(status)
        config.write_bytes(good)
        daemon.send_signal(signal.SIGTERM)
        output, _ = daemon.communicate(timeout=30)
        assert daemon.returncode == 0
        assert output.count("reload failed, keeping the running config") == len(BAD_FILES)
        assert "not UTF-8" in output and "[realtime] url" in output and "rotate_margin" in output
        assert "Traceback" not in output
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.communicate()


def test_sigterm_with_event_subscribers_attached_logs_no_error(tmp_path, notify_socket):
    config = write_config(tmp_path)
    daemon = start_daemon(tmp_path, notify_socket, config)
    watchers = []
    try:
        notify_socket.until("READY")
        sock = str(tmp_path / "control.sock")
        watchers = [subprocess.Popen([sys.executable, "-m", "device.cli", "events", "--socket", sock], cwd=ROOT,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for _ in range(3)]
        attached: set[int] = set()
        # Each is attached once it has printed a line (it says so on stderr, here merged; mute
        # makes events). Only the ones not attached yet are waited for: those that are always
        # have more to read, and counting rounds spent them all in half a second, before the
        # last watcher's Python had even started (a flake: 2 runs in 5).
        give_up = time.monotonic() + 60
        while len(attached) < len(watchers) and time.monotonic() < give_up:
            control.request(sock, {"cmd": "mute"})
            waiting = [w for w in watchers if w.pid not in attached]
            ready, _, _ = select.select([w.stdout for w in waiting], [], [], 0.5)
            for watcher in waiting:
                if watcher.stdout in ready and watcher.stdout.readline():
                    attached.add(watcher.pid)
        assert len(attached) == len(watchers)
        # At once, while the last mute's events are still in flight: the stop must not be lost
        # (Python 3.11's wait_for could swallow it; the loops wait with asyncio.timeout).
        daemon.send_signal(signal.SIGTERM)
        output, _ = daemon.communicate(timeout=30)
        assert daemon.returncode == 0, output
        assert " ERROR " not in output and "Traceback" not in output, output
        for watcher in watchers:
            rest, _ = watcher.communicate(timeout=30)
            assert watcher.returncode == 3 and "closed the event stream" in rest and "Traceback" not in rest
    finally:
        for proc in (daemon, *watchers):
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
