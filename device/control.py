"""The control socket: how ``pivoice status|events|say|…`` talk to the running daemon.

A Unix stream socket (default ``/run/pivoice/control.sock``, in the unit's runtime directory),
mode 0660: the service user and its group (admins added to the ``pivoice`` group) may use it,
nobody else. The protocol is JSON lines: the client sends one request object, ``{"cmd": ...}``,
and reads one reply object; ``events`` instead streams one object per bus event until the
client hangs up. Replies are ``{"ok": true, ...}`` or ``{"ok": false, "error": "..."}``.

Limits keep a flood of clients from exhausting the daemon: at most ``MAX_CLIENTS`` requests
and ``MAX_STREAMS`` event subscribers at once (the next one gets a ``busy`` error line and is
closed), a request line within ``REQUEST_TIMEOUT_S`` and ``MAX_REQUEST`` bytes; subscribers are
exempt from the request timeout. ``{"cmd": "events", "ack": true}`` first answers
``{"ok": true, "subscribed": true}`` once subscribed, so a client can send after it.

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
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from .bus import BusEvent, EventBus

# The client side (``pivoice status`` and friends) lives in :mod:`device.controlclient`; its
# names stay importable from here.
from .controlclient import ANSWER_TIMEOUT_S, BadRequest, DaemonUnreachable, EventStream, check_request, request, stream

logger = logging.getLogger(__name__)
__all__ = ["ANSWER_TIMEOUT_S", "BadRequest", "ControlServer", "DaemonUnreachable", "EventStream", "check_request",
           "request", "stream"]
#: Longest request line; a longer one gets an error reply and the connection is closed.
MAX_REQUEST = 64 * 1024
#: Connections served at once (events subscribers not included). At the cap a new connection
#: closes the oldest one that has not sent its request yet, else it gets one ``busy`` line.
MAX_CLIENTS = 32
#: ``events`` subscribers at once; they may stay connected for days, so they have their own cap.
MAX_STREAMS = 16
#: Seconds a client may take to send its request line, and a reader to take a line we write.
REQUEST_TIMEOUT_S = 5.0
WRITE_TIMEOUT_S = 10.0
Handler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]] | dict[str, Any]]


@dataclass
class ControlStats:
    """Connections the socket turned away, by reason (for ``pivoice status``)."""

    refused_busy: int = 0
    evicted: int = 0
    timed_out: int = 0
    bad_requests: int = 0


class ControlServer:
    def __init__(self, path: str, bus: EventBus, commands: dict[str, Handler], *, mode: int = 0o660,
                 max_clients: int = MAX_CLIENTS, max_streams: int = MAX_STREAMS,
                 request_timeout_s: float = REQUEST_TIMEOUT_S) -> None:
        self.path = Path(path)
        self.bus = bus
        self.commands = commands
        self.mode = mode
        self.max_clients = max_clients
        self.max_streams = max_streams
        self.request_timeout_s = request_timeout_s
        self.stats = ControlStats()
        self._server: asyncio.base_events.Server | None = None
        self._clients: set[asyncio.Task[Any]] = set()
        self._streams: set[asyncio.Task[Any]] = set()
        #: Connections still waiting for their request line, oldest first.
        self._idle: dict[asyncio.Task[Any], asyncio.StreamWriter] = {}
        self._closing = asyncio.Event()

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
            self._closing.set()  # streams end on their own: a cancelled handler logs a traceback on 3.11
            for task in list(self._idle):  # nothing to finish for clients that sent nothing yet
                task.cancel()
            tasks = self._clients | self._streams
            if tasks:
                _, late = await asyncio.wait(tasks, timeout=2.0)
                for task in late:
                    task.cancel()
                await asyncio.gather(*late, return_exceptions=True)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(2.0):   # not wait_for: it can swallow a cancellation
                    await self._server.wait_closed()
            self._server = None
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        try:
            if len(self._clients) >= self.max_clients and not self._evict_idle():
                self.stats.refused_busy += 1
                await _write(writer, {"ok": False, "error": f"busy: {self.max_clients} requests running; try again"})
                return
            self._clients.add(task)
            self._idle[task] = writer
            try:
                request = await self._read_request(reader, writer)
            finally:
                self._idle.pop(task, None)
            if request is None:
                return
            if request.get("cmd") == "events":
                self._clients.discard(task)
                await self._subscribe(task, request, reader, writer)
                return
            await _write(writer, await self._run(request))
        except (TimeoutError, ConnectionError, asyncio.IncompleteReadError):
            pass  # the client went away or stopped reading: its problem, not the daemon's
        except asyncio.CancelledError:
            # Only close() cancels a handler (one that did not end in time). Ending normally
            # keeps asyncio 3.11 from logging a traceback for the cancelled connection task.
            pass
        finally:
            self._clients.discard(task)
            self._streams.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                async with asyncio.timeout(1.0):
                    await writer.wait_closed()

    def _evict_idle(self) -> bool:
        """Make room by closing the oldest connection that has not sent its request yet.

        A flood of idle connections then costs the flood, not the admin running ``pivoice status``.
        """
        if not self._idle:
            return False
        task, writer = next(iter(self._idle.items()))
        del self._idle[task]
        self._clients.discard(task)
        self.stats.evicted += 1
        with contextlib.suppress(Exception):
            writer.write(b'{"ok": false, "error": "closed: too many connections"}\n')
        task.cancel()
        return True

    async def _read_request(self, reader: asyncio.StreamReader,
                            writer: asyncio.StreamWriter) -> dict[str, Any] | None:
        """The request object, or None after telling the client what was wrong with it."""
        try:
            async with asyncio.timeout(self.request_timeout_s):
                line = await reader.readline()
        except TimeoutError:
            self.stats.timed_out += 1
            await _write(writer, {"ok": False, "error": f"no request within {self.request_timeout_s:g} s"})
            return None
        except ValueError:  # asyncio's LimitOverrunError for a line over MAX_REQUEST
            self.stats.bad_requests += 1
            await _write(writer, {"ok": False, "error": f"request longer than {MAX_REQUEST} bytes"})
            return None
        try:
            request = json.loads(line or b"{}")
            if not isinstance(request, dict):
                raise ValueError("not an object")
        except (ValueError, RecursionError) as exc:
            self.stats.bad_requests += 1
            await _write(writer, {"ok": False, "error": f"bad request: {str(exc)[:200]}"})
            return None
        return request

    async def _run(self, request: dict[str, Any]) -> dict[str, Any]:
        cmd = request.get("cmd")
        handler = self.commands.get(str(cmd))
        if handler is None:
            return {"ok": False, "error": f"unknown command {str(cmd)[:60]!r}; known: events, "
                    + ", ".join(sorted(self.commands))}
        try:
            result = handler(request)
            if asyncio.iscoroutine(result):
                reply: dict[str, Any] = await result
            else:
                reply = cast(dict[str, Any], result)  # not a coroutine: a synchronous handler's reply
        except (ValueError, TypeError, KeyError) as exc:
            reply = {"ok": False, "error": str(exc)}
        return {"ok": True, **reply} if "ok" not in reply else reply

    async def _subscribe(self, task: asyncio.Task[Any], request: dict[str, Any], reader: asyncio.StreamReader,
                         writer: asyncio.StreamWriter) -> None:
        if len(self._streams) >= self.max_streams:
            self.stats.refused_busy += 1
            await _write(writer, {"ok": False, "error": f"busy: {self.max_streams} event streams open; "
                                  "close one (pivoice events) and try again"})
            return
        self._streams.add(task)
        await self._stream(reader, writer, ack=request.get("ack") is True)

    async def _stream(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, ack: bool) -> None:
        sub = self.bus.subscribe(maxsize=500)
        # Subscribed before the ack: a client that waits for it (pivoice say) misses nothing.
        if ack:
            await _write(writer, {"ok": True, "subscribed": True})
        hangup = asyncio.ensure_future(reader.read(1))
        closing = asyncio.ensure_future(self._closing.wait())
        getter: asyncio.Future[BusEvent] | None = None
        try:
            while True:
                getter = asyncio.ensure_future(sub.get())
                done, _ = await asyncio.wait({getter, hangup, closing}, return_when=asyncio.FIRST_COMPLETED)
                if getter not in done:
                    return
                event = getter.result()
                await _write(writer, {"kind": event.kind, "at": event.at, "wall": event.data.get("wall"),
                                      **{k: v for k, v in event.data.items() if k != "wall"}})
        finally:
            for future in (getter, hangup, closing):
                if future is not None:
                    future.cancel()
            sub.close()


async def _write(writer: asyncio.StreamWriter, obj: dict[str, Any]) -> None:
    writer.write(json.dumps(obj, default=str).encode() + b"\n")
    # A reader that never reads must not hold the handler (and its descriptor) for ever.
    async with asyncio.timeout(WRITE_TIMEOUT_S):
        await writer.drain()
