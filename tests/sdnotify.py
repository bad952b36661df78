"""A real NOTIFY_SOCKET for tests: what a process tells systemd (``READY=1``, ``STATUS=``...)
is an event a test waits for, instead of polling the process until it looks ready."""

from __future__ import annotations

import socket
import time
from pathlib import Path


class NotifySocket:
    def __init__(self, path: Path) -> None:
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.messages: list[dict[str, str]] = []

    def receive(self, timeout: float = 30.0) -> dict[str, str] | None:
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(4096).decode()
        except TimeoutError:
            return None
        fields = dict(line.split("=", 1) for line in data.splitlines() if "=" in line)
        self.messages.append(fields)
        return fields

    def until(self, key: str, timeout: float = 30.0, value_starts: str = "") -> dict[str, str]:
        """The first message with ``key`` (whose value starts with ``value_starts``)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            msg = self.receive(max(0.1, deadline - time.monotonic()))
            if msg and key in msg and msg[key].startswith(value_starts):
                return msg
        raise AssertionError(f"no {key}{'=' + value_starts if value_starts else ''} from the process; "
                             f"got {self.messages[-10:]}")

    def drain(self) -> list[dict[str, str]]:
        out = []
        while (msg := self.receive(0.01)) is not None:
            out.append(msg)
        return out

    def close(self) -> None:
        self.sock.close()
