"""One WebSocket connection to a Realtime endpoint: the thin asyncio wrapper.

It only pumps frames through :class:`RealtimeProtocol` and owns the timeouts. It turns the
handshake's in-band failures (reference section 3: a bad key still upgrades with 101, then
sends an ``error`` and closes 3000/4000) and the way a connection ends into the exceptions of
:mod:`device.errors`, which say whether to retry.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from ..errors import (
    AuthenticationError,
    ConnectionLost,
    RealtimeError,
    RejectedSetupError,
    RemoteProtocolError,
    ServerError,
    SessionExpired,
)
from ..redact import scrub
from ..wsdeflate import client_extensions
from .dialect import Dialect, parse_session
from .events import ClientEvent, ErrorEvent, ServerEvent, SessionCreated
from .protocol import MAX_FRAME_BYTES, RealtimeProtocol, frame_kind
from .session import SessionInfo

logger = logging.getLogger(__name__)

#: Error codes that end the session for good and what they mean for the admin.
_SETUP_FIXES = {
    "beta_api_shape_disabled": "the server no longer speaks the beta shape: set [realtime] dialect = \"ga\"",
    "invalid_model": "the server does not offer this model in realtime mode: fix [realtime] model",
    "missing_model": "set [realtime] model",
    "model_not_found": "the key has no access to this model: fix [realtime] model or the account",
}
_AUTH_CODES = frozenset({"invalid_api_key"})
#: Close codes (reference section 3): 3000 auth, 4000 request shape, 1001 going away/expiry.
CLOSE_AUTH = 3000
CLOSE_SHAPE = 4000
CLOSE_GOING_AWAY = 1001


@dataclass(frozen=True)
class Endpoint:
    """Where and how to connect. ``api_key`` never appears in repr or messages."""

    url: str
    model: str
    dialect: Dialect = Dialect.GA
    api_key: str = field(default="", repr=False)
    #: "bearer" (OpenAI, and Azure with Entra tokens) or "api-key" (Azure keys); "auto"
    #: picks api-key for hosts under azure.com.
    auth: str = "auto"

    @property
    def is_azure(self) -> bool:
        host = urlsplit(self.url).hostname or ""
        return host.endswith(".azure.com")

    def ws_url(self) -> str:
        """The URL with ``model`` (or Azure's ``deployment`` for the preview path) added."""
        parts = urlsplit(self.url)
        query = dict(parse_qsl(parts.query))
        if self.is_azure and "api-version" in query:
            query.setdefault("deployment", self.model)
        else:
            query.setdefault("model", self.model)
        return urlunsplit(parts._replace(query=urlencode(query)))

    def headers(self) -> dict[str, str]:
        headers: dict[str, str] = {}
        use_api_key = self.auth == "api-key" or (self.auth == "auto" and self.is_azure)
        if self.api_key:
            if use_api_key:
                headers["api-key"] = self.api_key
            else:
                headers["Authorization"] = f"Bearer {self.api_key}"
        if self.dialect is Dialect.BETA:
            headers["OpenAI-Beta"] = "realtime=v1"
        return headers


def error_for(event: ErrorEvent | None, close_code: int | None, close_reason: str = "") -> RealtimeError:
    """The exception for a connection that ended, from its last error event and close code."""
    code = event.code if event else None
    if code == "session_expired" or (close_code == CLOSE_GOING_AWAY and "maximum duration" in close_reason):
        return SessionExpired("the Realtime session reached its time limit", code="session_expired")
    if code in _AUTH_CODES or close_code == CLOSE_AUTH:
        detail = "rejected the API key" if code in _AUTH_CODES else "requires authentication"
        return AuthenticationError(f"the Realtime server {detail} ({code or close_code})", code=code)
    if code in _SETUP_FIXES or close_code == CLOSE_SHAPE:
        fix = _SETUP_FIXES.get(code or "", "check [realtime] url, model and dialect in the config")
        return RejectedSetupError(f"the Realtime server refused the session setup ({code or close_code})",
                                  code=code, fix=fix)
    if event is not None and close_code not in (None, 1000, 1001, 1006):
        return ServerError(f"the Realtime server closed the session after error {code}: "
                           f"{scrub(event.error.message[:200])}", code=code)
    return ConnectionLost(f"the Realtime connection closed (code {close_code})", code=code)


@dataclass
class ConnectionStats:
    """What a connection tolerated. ``bad_frames`` counts skipped frames by kind: ``json``,
    ``depth``, ``too_large``, ``binary``, ``not_object``, ``no_type``, ``missing_field``,
    ``field_type``, ``audio``, ``unexpected`` (see :mod:`device.realtime.protocol`)."""

    bad_frames: dict[str, int] = field(default_factory=dict)

    @property
    def bad_frames_total(self) -> int:
        return sum(self.bad_frames.values())


#: Kinds of bad frame already logged at WARNING in this process; later ones go to DEBUG so a
#: server that sends nothing but garbage cannot flood the journal.
_WARNED: set[str] = set()


def _log_bad_frame(kind: str, exc: RemoteProtocolError, secret: str) -> None:
    level = logging.DEBUG if kind in _WARNED else logging.WARNING
    _WARNED.add(kind)
    logger.log(level, "skipped a malformed server frame (%s): %s%s", kind, scrub(str(exc)[:300], secret),
               "" if level == logging.DEBUG else " (further ones of this kind are logged at debug)")


class RealtimeConnection:
    """An open Realtime session. Use :meth:`open`; iterate or :meth:`recv` for events."""

    def __init__(self, ws: ClientConnection, protocol: RealtimeProtocol, endpoint: Endpoint) -> None:
        self._ws = ws
        self.protocol = protocol
        self.endpoint = endpoint
        self.session: SessionInfo | None = None
        self.last_error: ErrorEvent | None = None
        self.protocol_errors = 0
        self.stats = ConnectionStats()
        #: Monotonic time the session ends (set by whoever knows the clock: the session manager).
        self.deadline: float | None = None

    @classmethod
    async def open(cls, endpoint: Endpoint, *, open_timeout_s: float = 10.0,
                   ping_interval_s: float | None = 10.0, ping_timeout_s: float | None = 10.0) -> RealtimeConnection:
        """Connect and wait for ``session.created``; raise a classified error otherwise."""
        try:
            ws = await connect(
                endpoint.ws_url(), additional_headers=endpoint.headers(), open_timeout=open_timeout_s,
                ping_interval=ping_interval_s, ping_timeout=ping_timeout_s, max_size=MAX_FRAME_BYTES,
                max_queue=256, proxy=None, close_timeout=2.0, extensions=client_extensions(),
            )
        except InvalidURI as exc:
            raise RejectedSetupError(f"[realtime] url is not a WebSocket URL: {exc.uri!r}",
                                     fix="use a ws:// or wss:// URL") from None
        except InvalidHandshake as exc:
            raise _handshake_error(exc) from None
        except (TimeoutError, OSError) as exc:
            where = urlsplit(endpoint.url).netloc
            raise ConnectionLost(f"cannot reach {where}: {exc.__class__.__name__}: {exc}") from None
        conn = cls(ws, RealtimeProtocol(endpoint.dialect), endpoint)
        try:
            async with asyncio.timeout(open_timeout_s):   # not wait_for: it can swallow a cancellation
                first = await conn.recv(skip_bad=False)
        except TimeoutError:
            await ws.close()
            raise ConnectionLost("the Realtime server sent no session.created in time") from None
        except RemoteProtocolError as exc:
            # Without a usable first event there is no session to run: end it (retried with backoff).
            await ws.close()
            raise RemoteProtocolError(
                f"the Realtime server's first frame is unusable: {scrub(str(exc)[:200])}") from None
        if isinstance(first, ErrorEvent):
            # An in-band handshake failure; the close follows in the same millisecond.
            try:
                async with asyncio.timeout(2.0):
                    await ws.wait_closed()
            except TimeoutError:
                await ws.close()
            rcvd = ws.close_code, ws.close_reason or ""
            raise error_for(first, rcvd[0], rcvd[1])
        if not isinstance(first, SessionCreated):
            await ws.close()
            raise RemoteProtocolError(f"expected session.created first, got {first.type}")
        conn.session = parse_session(first.session, endpoint.dialect)
        logger.info("realtime session %s open (model %s, expires at %s)",
                    conn.session.id, conn.session.model, conn.session.expires_at)
        return conn

    async def send(self, event: ClientEvent) -> None:
        frame = self.protocol.send(event)
        if logger.isEnabledFor(logging.DEBUG) and event.TYPE != "input_audio_buffer.append":
            logger.debug("send %s", event.TYPE)
        try:
            await self._ws.send(frame)  # type: ignore[arg-type]
        except ConnectionClosed as exc:
            raise self._closed_error(exc) from None

    async def recv(self, *, skip_bad: bool = True) -> ServerEvent:
        """The next server event. Frames that cannot be used are counted in :attr:`stats`,
        logged once per kind and skipped (``skip_bad=False`` raises RemoteProtocolError)."""
        while True:
            try:
                frame = await self._ws.recv()
            except ConnectionClosed as exc:
                raise self._closed_error(exc) from None
            try:
                event = self.protocol.receive_text(frame)
            except RemoteProtocolError as exc:
                self.protocol_errors += 1
                kind = frame_kind(exc)
                self.stats.bad_frames[kind] = self.stats.bad_frames.get(kind, 0) + 1
                _log_bad_frame(kind, exc, self.endpoint.api_key)
                if not skip_bad:
                    raise
                continue
            if isinstance(event, ErrorEvent):
                self.last_error = event
                logger.warning("server error %s: %s", event.code,
                               scrub(event.error.message[:300], self.endpoint.api_key))
            return event  # type: ignore[return-value]

    def __aiter__(self) -> RealtimeConnection:
        return self

    async def __anext__(self) -> ServerEvent:
        return await self.recv()

    async def close(self) -> None:
        await self._ws.close()

    @property
    def is_open(self) -> bool:
        return self._ws.close_code is None

    def _closed_error(self, exc: ConnectionClosed) -> RealtimeError:
        # Without a server close frame, say why we closed (1009: a frame over MAX_FRAME_BYTES).
        frame = exc.rcvd or exc.sent
        return error_for(self.last_error, frame.code if frame else None, frame.reason if frame else "")


def _handshake_error(exc: InvalidHandshake) -> RealtimeError:
    status = getattr(getattr(exc, "response", None), "status_code", None)
    code = f"http_{status}" if status else None
    if status in (401, 403):
        return AuthenticationError(f"the Realtime endpoint refused the upgrade (HTTP {status})", code=code)
    if status in (400, 404):
        return RejectedSetupError(f"the Realtime endpoint refused the upgrade (HTTP {status})", code=code)
    return ConnectionLost(f"WebSocket handshake failed: {exc.__class__.__name__}", code=code)


__all__: list[Any] = ["Endpoint", "RealtimeConnection", "error_for"]
