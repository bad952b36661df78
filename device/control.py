"""The control socket: how ``pivoice status|events|say|…`` talk to the running daemon.

A Unix stream socket (default ``/run/pivoice/control.sock``, in the unit's runtime directory),
mode 0660: the service user and its group (admins added to the ``pivoice`` group) may use it,
nobody else. The protocol is JSON lines: the client sends one request object, ``{"cmd": ...}``,
and reads one reply object; ``events`` instead streams one object per bus event until the
client hangs up. Replies are ``{"ok": true, ...}`` or ``{"ok": false, "error": "..."}``.

Commands: ``status``, ``events``, ``talk`` (``{"on": true|false}``: start/stop a push-to-talk
turn), ``mute`` (``{"muted": true|false}``, or toggle), ``new_conversation``,
``say`` (``{"text": "..."}``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import stat
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from .bus import EventBus

logger = logging.getLogger(__name__)
MAX_REQUEST = 64 * 1024
Handler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]] | dict[str, Any]]


class ControlServer:
    def __init__(self, path: str, bus: EventBus, commands: dict[str, Handler], *, mode: int = 0o660) -> None:
        self.path = Path(path)
        self.bus = bus
        self.commands = commands
        self.mode = mode
        self._server: asyncio.base_events.Server | None = None
        self._clients: set[asyncio.Task] = set()

    async def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o750)
        if self.path.exists() or self.path.is_symlink():
            if not stat.S_ISSOCK(self.path.lstat().st_mode):
                raise OSError(f"{self.path} exists and is not a socket; refusing to replace it")
            self.path.unlink()
        old = os.umask(0o117)  # never world-accessible, not even for an instant
        try:
            self._server = await asyncio.start_unix_server(self._client, path=str(self.path), limit=MAX_REQUEST)
        finally:
            os.umask(old)
        os.chmod(self.path, self.mode)
        logger.info("control socket %s", self.path)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            for task in list(self._clients):
                task.cancel()
            await asyncio.gather(*self._clients, return_exceptions=True)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), 2.0)
            self._server = None
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._clients.add(task)
        try:
            line = await reader.readline()
            try:
                request = json.loads(line or b"{}")
                if not isinstance(request, dict):
                    raise ValueError("not an object")
            except ValueError as exc:
                await _write(writer, {"ok": False, "error": f"bad request: {exc}"})
                return
            cmd = request.get("cmd")
            if cmd == "events":
                await self._stream(reader, writer)
                return
            handler = self.commands.get(str(cmd))
            if handler is None:
                await _write(writer, {"ok": False, "error": f"unknown command {cmd!r}; known: events, "
                                      + ", ".join(sorted(self.commands))})
                return
            try:
                reply = handler(request)
                if asyncio.iscoroutine(reply):
                    reply = await reply
            except (ValueError, TypeError, KeyError) as exc:
                reply = {"ok": False, "error": str(exc)}
            await _write(writer, {"ok": True, **reply} if "ok" not in reply else reply)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            pass  # the client went away or sent garbage: its problem, not the daemon's
        finally:
            self._clients.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _stream(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sub = self.bus.subscribe(maxsize=500)
        hangup = asyncio.ensure_future(reader.read(1))
        try:
            while True:
                getter = asyncio.ensure_future(sub.get())
                done, _ = await asyncio.wait({getter, hangup}, return_when=asyncio.FIRST_COMPLETED)
                if hangup in done:
                    getter.cancel()
                    return
                event = getter.result()
                await _write(writer, {"kind": event.kind, "at": event.at, "wall": event.data.get("wall"),
                                      **{k: v for k, v in event.data.items() if k != "wall"}})
        finally:
            hangup.cancel()
            sub.close()


async def _write(writer: asyncio.StreamWriter, obj: dict[str, Any]) -> None:
    writer.write(json.dumps(obj, default=str).encode() + b"\n")
    await writer.drain()


# ------------------------------------------------------------------------ the client side
class DaemonUnreachable(Exception):
    """No daemon answers on the control socket."""


def request(path: str, obj: dict[str, Any], *, timeout_s: float = 5.0) -> dict[str, Any]:
    """One request, one reply (blocking; for the CLI)."""
    with _connect(path, timeout_s) as sock:
        sock.sendall(json.dumps(obj).encode() + b"\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    if not data:
        raise DaemonUnreachable(f"the daemon closed {path} without answering")
    return json.loads(data)


def stream(path: str, obj: dict[str, Any], *, timeout_s: float | None = None):  # noqa: ANN201 - dicts
    """Events as they come; ``timeout_s`` of silence raises TimeoutError."""
    with _connect(path, timeout_s) as sock:
        sock.sendall(json.dumps(obj).encode() + b"\n")
        buf = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                yield json.loads(line)


def _connect(path: str, timeout_s: float | None):  # noqa: ANN202
    import socket

    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout_s)
    try:
        sock.connect(path)
    except FileNotFoundError:
        sock.close()
        raise DaemonUnreachable(f"the pivoice daemon is not running (no socket at {path}); "
                               "start it with `systemctl start pivoice`") from None
    except ConnectionRefusedError:
        sock.close()
        raise DaemonUnreachable(f"the pivoice daemon is not running (stale socket {path}); "
                               "start it with `systemctl start pivoice`") from None
    except PermissionError:
        sock.close()
        raise DaemonUnreachable(f"no permission to use {path}: run as root or add yourself to the "
                               "pivoice group (`sudo usermod -aG pivoice $USER`, then log in again)") from None
    return sock
