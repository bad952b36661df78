"""One WebSocket connection to a GPT-Live endpoint: the thin asyncio wrapper.

It only pumps frames through :class:`~device.live.protocol.LiveProtocol` and owns the
timeouts. Live differs from Realtime at the handshake (reference sections 1, 4, 9): the URL
carries no model, the server says nothing until the client sends ``session.start``, and a
refused model or setting arrives as an ``error`` *instead of* ``session.started``. A bad key
is expected as HTTP 401 on the upgrade (NOT FOUND documented), and is also recognised in-band.
Every failure becomes an exception of :mod:`device.errors`, which says whether to retry; there
is no retry loop here.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from urllib.parse import urlsplit

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
from .events import LiveClientEvent, LiveErrorEvent, LiveServerEvent, SessionClosed, SessionStart, SessionStarted
from .models import SessionConfig, SessionResource
from .protocol import LiveProtocol

logger = logging.getLogger(__name__)

DEFAULT_URL = "wss://api.openai.com/v1/live/sessions"
#: Close codes the SDK treats as recoverable (reference section 9); others are final.
RECOVERABLE_CLOSE_CODES = frozenset({1001, 1005, 1006, 1011, 1012, 1013, 1015})
_AUTH_CODES = frozenset({"invalid_api_key", "unauthorized", "authentication_error", "missing_api_key"})
_MODEL_CODES = frozenset({"model_not_found", "invalid_model", "unsupported_model", "model_access_denied"})
_MODEL_FIX = "set [realtime] model to a GPT-Live model your key may use (gpt-live-1 or gpt-live-1.1)"
_SETUP_FIX = "check [realtime] url, model, voice and the live settings in the config"


@dataclass(frozen=True)
class LiveEndpoint:
    """Where and how to connect. ``api_key`` never appears in repr or messages.

    ``auth`` is ``bearer`` (OpenAI, and Azure with a key or Entra token, section 1) or
    ``api-key`` (an ``api-key`` header, for gateways that want it)."""

    url: str = DEFAULT_URL
    model: str = "gpt-live-1"
    api_key: str = field(default="", repr=False)
    auth: str = "bearer"

    def headers(self) -> dict[str, str]:
        if not self.api_key:
            return {}
        if self.auth == "api-key":
            return {"api-key": self.api_key}
        return {"Authorization": f"Bearer {self.api_key}"}


def error_for(event: LiveErrorEvent | None, closed: SessionClosed | None, close_code: int | None,
              *, started: bool) -> RealtimeError:
    """The exception for a Live connection that failed or ended, from what was seen last."""
    if closed is not None and closed.expired:
        return SessionExpired("the GPT-Live session reached its time limit (session.closed: expired)",
                              code="expired")
    code = event.code if event else None
    kind = event.error.type if event else None
    if code in _AUTH_CODES or kind == "authentication_error":
        return AuthenticationError(f"the GPT-Live server rejected the API key ({code or kind})", code=code)
    param = event.error.param if event else None
    if code in _MODEL_CODES or (param or "").startswith("session.model"):
        return RejectedSetupError(f"the GPT-Live server refused the model ({code})", code=code, fix=_MODEL_FIX)
    if event is not None and not started:
        return RejectedSetupError(f"the GPT-Live server refused session.start ({code}, param {param})",
                                  code=code, fix=_SETUP_FIX)
    if closed is not None:
        return ServerError(f"the GPT-Live server closed the session (reason {closed.reason})", code=closed.reason)
    if event is not None and close_code not in (None, 1000) and close_code not in RECOVERABLE_CLOSE_CODES:
        return ServerError(f"the GPT-Live server closed the session after error {code}: "
                           f"{scrub(event.error.message[:200])}", code=code)
    return ConnectionLost(f"the GPT-Live connection closed (code {close_code})", code=code)


class LiveConnection:
    """An open GPT-Live session. Use :meth:`open`; iterate or :meth:`recv` for events.

    Iteration ends after ``session.closed`` with reason ``close_requested``; any other end
    raises the classified error (SessionExpired for ``expired``)."""

    def __init__(self, ws: ClientConnection, protocol: LiveProtocol, endpoint: LiveEndpoint) -> None:
        self._ws = ws
        self.protocol = protocol
        self.endpoint = endpoint
        self.session: SessionResource | None = None
        self.last_error: LiveErrorEvent | None = None
        self.closed_event: SessionClosed | None = None
        self.protocol_errors = 0

    @classmethod
    async def open(cls, endpoint: LiveEndpoint, config: SessionConfig, *, open_timeout_s: float = 10.0,
                   ping_interval_s: float | None = 10.0, ping_timeout_s: float | None = 10.0) -> LiveConnection:
        """Connect, send ``session.start`` and wait for ``session.started``; raise a classified error otherwise."""
        try:
            ws = await connect(
                endpoint.url, additional_headers=endpoint.headers(), open_timeout=open_timeout_s,
                ping_interval=ping_interval_s, ping_timeout=ping_timeout_s, max_size=16 * 1024 * 1024,
                max_queue=256, proxy=None, close_timeout=2.0, extensions=client_extensions(),
            )
        except InvalidURI as exc:
            raise RejectedSetupError(f"[realtime] url is not a WebSocket URL: {exc.uri!r}",
                                     fix="use a ws:// or wss:// URL") from None
        except InvalidHandshake as exc:
            raise _handshake_error(exc) from None
        except (TimeoutError, OSError) as exc:
            raise ConnectionLost(f"cannot reach {urlsplit(endpoint.url).netloc}: {exc.__class__.__name__}") from None
        conn = cls(ws, LiveProtocol(), endpoint)
        try:
            await conn.send(SessionStart(session=config))
        except RealtimeError:
            pass  # closed already: the reason (an in-band refusal) is still buffered for _wait_started
        await conn._wait_started(open_timeout_s)
        return conn

    async def _wait_started(self, timeout_s: float) -> None:
        try:
            async with asyncio.timeout(timeout_s):   # not wait_for: it can swallow a cancellation
                first = await self._recv_frame()
        except TimeoutError:
            await self._ws.close()
            raise ConnectionLost("the GPT-Live server sent no session.started in time") from None
        except ConnectionClosed as exc:
            raise self._closed_error(exc, started=False) from None
        if isinstance(first, LiveErrorEvent):
            # "A startup error replaces session.started" (section 9): the session never began.
            await self._ws.close()
            raise error_for(first, None, self._ws.close_code, started=False)
        if not isinstance(first, SessionStarted):
            await self._ws.close()
            raise RemoteProtocolError(f"expected session.started first, got {first.type}")
        self.session = first.session
        logger.info("GPT-Live session %s open (model %s, expires at %s)",
                    first.session.id, first.session.model, first.session.expires_at)

    async def send(self, event: LiveClientEvent) -> None:
        frame = self.protocol.send(event)
        if logger.isEnabledFor(logging.DEBUG) and event.TYPE != "session.input_audio.append":
            logger.debug("send %s", event.TYPE)
        try:
            await self._ws.send(frame)
        except ConnectionClosed as exc:
            raise self._closed_error(exc, started=True) from None

    async def _recv_frame(self) -> LiveServerEvent:
        """The next event that parses; malformed frames are counted, logged and skipped."""
        while True:
            frame = await self._ws.recv()
            try:
                event = self.protocol.receive_text(frame)
            except RemoteProtocolError as exc:
                self.protocol_errors += 1
                logger.warning("ignored a malformed GPT-Live frame: %s", exc)
                continue
            if isinstance(event, LiveErrorEvent):
                self.last_error = event
                logger.warning("GPT-Live error %s: %s", event.code,
                               scrub(event.error.message[:300], self.endpoint.api_key))
            elif isinstance(event, SessionClosed):
                self.closed_event = event
                logger.info("GPT-Live session closed: %s", event.reason)
            return event  # type: ignore[return-value]

    async def recv(self) -> LiveServerEvent:
        try:
            return await self._recv_frame()
        except ConnectionClosed as exc:
            raise self._closed_error(exc, started=True) from None

    def __aiter__(self) -> LiveConnection:
        return self

    async def __anext__(self) -> LiveServerEvent:
        try:
            return await self._recv_frame()
        except ConnectionClosed as exc:
            if self.closed_event is not None and self.closed_event.reason == "close_requested":
                raise StopAsyncIteration from None
            raise self._closed_error(exc, started=True) from None

    async def close(self) -> None:
        await self._ws.close()

    @property
    def is_open(self) -> bool:
        return self._ws.close_code is None

    def _closed_error(self, exc: ConnectionClosed, *, started: bool) -> RealtimeError:
        rcvd = exc.rcvd
        return error_for(self.last_error, self.closed_event, rcvd.code if rcvd else None, started=started)


def _handshake_error(exc: InvalidHandshake) -> RealtimeError:
    status = getattr(getattr(exc, "response", None), "status_code", None)
    if status in (401, 403):
        return AuthenticationError(f"the GPT-Live endpoint refused the upgrade (HTTP {status})")
    if status in (400, 404):
        return RejectedSetupError(f"the GPT-Live endpoint refused the upgrade (HTTP {status})",
                                  fix="check [realtime] url: OpenAI's is " + DEFAULT_URL)
    return ConnectionLost(f"WebSocket handshake failed: {exc.__class__.__name__}")
