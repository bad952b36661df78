"""JSON over plain HTTP/1.1, on asyncio and the standard library only.

Used where pivoice speaks a little HTTP: the token server (device side and its own upstream
call) and the simulator's ``POST /v1/realtime/client_secrets``. One request per connection
(``Connection: close``), bodies of at most 64 KiB, a deadline on reading each request, so a
slow or hostile client cannot hold the server. The client side runs :mod:`urllib` in a
thread, so ``https://`` works with the system's CA certificates.
"""

from __future__ import annotations

import asyncio
import json
import logging
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024
MAX_HEADERS = 64
READ_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class HttpRequest:
    method: str
    path: str
    #: Header names in lower case.
    headers: dict[str, str]
    body: bytes = b""
    peer: str = "?"

    def bearer(self) -> str:
        """The bearer token of the Authorization header, "" when there is none."""
        auth = self.headers.get("authorization", "")
        return auth[7:].strip() if auth[:7].lower() == "bearer " else ""

    def json(self) -> Any:
        """The body as JSON; ValueError when it is not."""
        return json.loads(self.body.decode("utf-8")) if self.body else {}


@dataclass(frozen=True)
class HttpReply:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)

    def encode(self) -> bytes:
        payload = json.dumps(self.body).encode("utf-8")
        reason = HTTPStatus(self.status).phrase if self.status in HTTPStatus._value2member_map_ else ""
        head = [f"HTTP/1.1 {self.status} {reason}", "Content-Type: application/json",
                f"Content-Length: {len(payload)}", "Connection: close", "Cache-Control: no-store"]
        head += [f"{k}: {v}" for k, v in self.headers.items()]
        return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + payload


def error_reply(status: int, code: str | None, message: str, **headers: str) -> HttpReply:
    """An error in the shape OpenAI's REST API uses: ``{"error": {message, type, param, code}}``."""
    return HttpReply(status, {"error": {"message": message, "type": "invalid_request_error",
                                        "param": None, "code": code}}, dict(headers))


Handler = Callable[[HttpRequest], Awaitable[HttpReply]]


class _BadRequest(Exception):
    pass


async def _read_request(reader: asyncio.StreamReader, peer: str) -> HttpRequest:
    line = (await reader.readline()).decode("latin-1").rstrip("\r\n")
    parts = line.split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise _BadRequest(f"not an HTTP/1.x request line: {line[:80]!r}")
    headers: dict[str, str] = {}
    for _ in range(MAX_HEADERS + 1):
        raw = (await reader.readline()).decode("latin-1").rstrip("\r\n")
        if not raw:
            break
        name, sep, value = raw.partition(":")
        if not sep:
            raise _BadRequest("malformed header line")
        headers[name.strip().lower()] = value.strip()
    else:
        raise _BadRequest("too many headers")
    try:
        length = int(headers.get("content-length", "0"))
    except ValueError:
        raise _BadRequest("Content-Length is not a number") from None
    if not 0 <= length <= MAX_BODY_BYTES:
        raise _BadRequest(f"body larger than {MAX_BODY_BYTES} bytes")
    body = await reader.readexactly(length) if length else b""
    return HttpRequest(parts[0].upper(), parts[1], headers, body, peer)


async def serve_json(handler: Handler, host: str, port: int) -> asyncio.Server:
    """Listen on ``host:port`` and answer every request with ``handler``'s reply."""

    async def on_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peername = writer.get_extra_info("peername")
        peer = f"{peername[0]}:{peername[1]}" if isinstance(peername, tuple) else "?"
        try:
            async with asyncio.timeout(READ_TIMEOUT_S):   # not wait_for: it can swallow a cancellation
                request = await _read_request(reader, peer)
            reply = await handler(request)
        except _BadRequest as exc:
            reply = error_reply(400, "bad_request", str(exc))
        except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
            writer.close()
            return
        except Exception:
            logger.exception("HTTP handler failed for a request from %s", peer)
            reply = error_reply(500, "internal_error", "internal error; see the server's log")
        try:
            writer.write(reply.encode())
            await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    return await asyncio.start_server(on_connection, host, port)


async def post_json(url: str, body: dict[str, Any], *, bearer: str, timeout_s: float) -> tuple[int, Any]:
    """POST ``body`` as JSON with a bearer token; return (status, parsed JSON or None).

    An HTTP error status is returned, not raised. Raises OSError (``urllib.error.URLError``
    is one) or TimeoutError when the server cannot be reached or does not answer in time."""
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"not an http:// or https:// URL: {url!r}")
    data = json.dumps(body).encode("utf-8")
    request = urllib.request.Request(url, data=data, method="POST", headers={
        "Content-Type": "application/json", "Authorization": f"Bearer {bearer}", "User-Agent": "pivoice"})

    def call() -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as response:
                return response.status, response.read(MAX_BODY_BYTES + 1)
        except urllib.error.HTTPError as exc:
            with exc:
                return exc.code, exc.read(MAX_BODY_BYTES + 1)

    status, raw = await asyncio.to_thread(call)
    try:
        return status, json.loads(raw.decode("utf-8")) if raw else None
    except ValueError:
        return status, None
