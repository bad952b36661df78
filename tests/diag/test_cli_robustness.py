"""The CLI against daemons that hang, sockets it cannot use and status it must not print as is:
a message and an exit code every time, never a traceback. Real processes, real sockets."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from device.bus import BusEvent, EventBus
from device.control import ControlServer

ROOT = Path(__file__).parents[2]


def pivoice(*args: str, python: str = sys.executable, prefix: tuple[str, ...] = (), timeout: float = 60):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([*prefix, python, "-m", "device.cli", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, env=env)


def assert_clean(result, code: int, *needles: str) -> None:
    out = result.stdout + result.stderr
    assert result.returncode == code, out
    assert "Traceback" not in out, out
    for needle in needles:
        assert needle in out, out


class FakeDaemon:
    """A real ControlServer on its own loop in a thread, with the commands a test gives it."""

    def __init__(self, path: Path, commands: dict) -> None:
        self.loop = asyncio.new_event_loop()
        self.bus = EventBus()
        self.server = ControlServer(str(path), self.bus, {name: self._bind(fn) for name, fn in commands.items()})
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def _bind(self, fn):
        return lambda req: fn(self, req)

    def __enter__(self) -> FakeDaemon:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.server.start(), self.loop).result(10)
        return self

    def __exit__(self, *exc) -> None:
        asyncio.run_coroutine_threadsafe(self.server.close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def test_a_daemon_that_accepts_but_never_answers_is_a_timeout_message(tmp_path):
    # A stopped (SIGSTOP) daemon's listening socket: the kernel completes the connection,
    # nothing ever answers. Exactly that, without stopping a process.
    path = tmp_path / "stopped.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(8)
    try:
        for command in (("status",), ("status", "--json"), ("say", "hello"), ("events",)):
            assert_clean(pivoice(*command, "--socket", str(path)), 3, "did not answer within")
    finally:
        listener.close()


def test_a_socket_path_too_long_is_a_message(tmp_path):
    path = "/tmp/" + "x" * 200 + ".sock"
    assert_clean(pivoice("status", "--socket", path), 3, "cannot connect to the control socket", "107 bytes")


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"), reason="needs root to become nobody")
def test_permission_denied_is_a_message(tmp_path):
    os.chmod(tmp_path, 0o700)
    with FakeDaemon(tmp_path / "c.sock", {"status": lambda d, req: {"state": "idle"}}):
        # the system python: the venv may live where nobody can read it; status needs only the stdlib
        python = shutil.which("python3", path="/usr/bin") or sys.executable
        result = pivoice("status", "--socket", str(tmp_path / "c.sock"), python=python,
                         prefix=("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"))
    if "No module named" in result.stderr:
        pytest.skip(f"{python} cannot run the CLI as nobody")
    assert_clean(result, 3, "no permission to use")


STATUS = {"state": "idle", "state_for_s": float("inf"), "link": "up", "session_id": "sess_1",
          "session_age_s": float("nan"), "rotation_in_s": float("-inf"), "deadline_in_s": 10.0,
          "endpoint": "wss://api.example.com/v1/realtime?model=m&api_key=sk-proj-LEAKED77",
          "model": "m", "dialect": "ga", "api_key": "set", "uptime_s": 3.0,
          "last_error": "server said: Incorrect API key provided: sk-proj-LEAKED77", "last_error_at": 1e300}


def test_status_json_is_valid_json_without_the_key(tmp_path):
    with FakeDaemon(tmp_path / "c.sock", {"status": lambda d, req: dict(STATUS)}):
        as_json = pivoice("status", "--json", "--socket", str(tmp_path / "c.sock"))
        human = pivoice("status", "--socket", str(tmp_path / "c.sock"))
    assert_clean(as_json, 0)
    status = json.loads(as_json.stdout, parse_constant=lambda name: pytest.fail(f"{name} in status --json"))
    assert status["state_for_s"] is None and status["rotation_in_s"] is None and status["deadline_in_s"] == 10.0
    assert status["endpoint"].startswith("wss://api.example.com/v1/realtime?model=m&api_key=")
    assert_clean(human, 0, "api.example.com")
    for out in (as_json.stdout, human.stdout):
        assert "LEAKED77" not in out and "sk-proj" not in out


def test_say_sees_a_reply_that_comes_before_the_say_is_even_answered(tmp_path):
    def say(daemon: FakeDaemon, req: dict) -> dict:
        # the fastest daemon there can be: the whole reply is on the bus before "queued" is sent
        daemon.bus.publish(BusEvent("reply", 1.0, {"text": f"You said: {req['text']}", "audio": True}))
        daemon.bus.publish(BusEvent("state", 1.1, {"state": "idle", "cause": "reply_finished"}))
        return {"queued": True}

    with FakeDaemon(tmp_path / "c.sock", {"say": say}):
        result = pivoice("say", "--socket", str(tmp_path / "c.sock"), "--timeout", "30", "hello")
    assert_clean(result, 0, "device: You said: hello")


def test_events_says_busy_instead_of_a_traceback(tmp_path):
    with FakeDaemon(tmp_path / "c.sock", {}) as daemon:
        daemon.server.max_streams = 0
        assert_clean(pivoice("events", "--socket", str(tmp_path / "c.sock")), 3, "busy")
        assert_clean(pivoice("say", "--socket", str(tmp_path / "c.sock"), "hi"), 3, "busy")


def test_doctor_reports_a_hung_or_odd_daemon_as_a_warning(tmp_path):
    config = tmp_path / "c.toml"
    config.write_text('[realtime]\nsimulator = true\n[audio]\nbackend = "simulated"\n[gpio]\npin_factory = "mock"\n')
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(tmp_path / "hung.sock"))
    listener.listen(8)
    try:
        hung = pivoice("doctor", "--config", str(config), "--socket", str(tmp_path / "hung.sock"))
    finally:
        listener.close()
    assert "Traceback" not in hung.stdout + hung.stderr and "did not answer" in hung.stdout
    with FakeDaemon(tmp_path / "odd.sock", {"status": lambda d, req: {"ok": False, "error": "sk-proj-ODD1 busy"}}):
        odd = pivoice("doctor", "--config", str(config), "--socket", str(tmp_path / "odd.sock"))
    assert "Traceback" not in odd.stdout + odd.stderr and "did not give its status" in odd.stdout
    assert "ODD1" not in odd.stdout
