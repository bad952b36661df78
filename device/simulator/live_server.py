"""The built-in GPT-Live server: ``pivoice simulator --api live``.

The handshake follows the reference (sections 1, 4, 9) and the choices listed in README.md
where it is silent: the upgrade is only accepted on ``/v1/live/sessions`` (or Azure's
``/openai/v1/live[/sessions]``) with a bearer key; a bad key is refused with HTTP 401 (or, with
``bad_key="in_band"``, an ``error`` ``invalid_api_key`` and close 1008); then the server stays
silent until ``session.start``. A refused model gets ``error`` ``model_not_found`` instead of
``session.started``, then close 1008. Every frame goes through the same
:class:`~device.live.protocol.LiveProtocol` the device uses; the session itself is
:class:`~device.simulator.live_session.LiveSimSession`. Usage is reported every
``usage_interval_s`` and the session ends with ``session.closed`` ``expired`` at the limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from urllib.parse import urlsplit

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from ..live import events as ev
from ..live.models import LiveErrorDetail
from ..live.protocol import LiveProtocol, MalformedEvent
from ..live.validate import RequestError
from .live_session import LiveSimOptions, LiveSimSession
from .loopback import LoopbackServer
from .server import _mask
from .session import Ids

logger = logging.getLogger(__name__)

PATHS = ("/v1/live/sessions", "/openai/v1/live/sessions", "/openai/v1/live")


@dataclass
class LiveSimulatorStats:
    connections: int = 0
    refused: int = 0
    expired: int = 0
    frames_in: int = 0
    sessions: list[LiveSimSession] = field(default_factory=list)


def _bearer(request: Request) -> str:
    auth = request.headers.get("Authorization", "")
    return auth[7:].strip() if auth.startswith("Bearer ") else ""


class LiveSimulator(LoopbackServer):
    def __init__(self, options: LiveSimOptions | None = None) -> None:
        self.options = options or LiveSimOptions()
        self.stats = LiveSimulatorStats()
        self._ids = Ids(self.options.seed)
        super().__init__()

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/v1/live/sessions"

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> LiveSimulator:
        self._server = await serve(self._handler, host, port, process_request=self._check_request,
                                   ping_interval=self.options.ping_interval_s, ping_timeout=20,
                                   max_size=16 * 1024 * 1024, max_queue=256, close_timeout=1.0)
        logger.info("GPT-Live simulator listening on ws://%s:%d/v1/live/sessions", host, self.port)
        return self

    def _key_ok(self, key: str) -> bool:
        return bool(key) and (not self.options.api_keys or key in self.options.api_keys)

    def _check_request(self, connection: ServerConnection, request: Request) -> Response | None:
        if urlsplit(request.path).path.rstrip("/") not in PATHS:
            return connection.respond(HTTPStatus.NOT_FOUND, "Not found: the GPT-Live endpoint is /v1/live/sessions\n")
        if urlsplit(request.path).query:
            # The model goes in session.start, never in the URL (section 1).
            return connection.respond(HTTPStatus.BAD_REQUEST, "GPT-Live takes no query parameters\n")
        key = _bearer(request)
        if not self._key_ok(key) and (self.options.bad_key == "http" or not key):
            self.stats.refused += 1
            message = "Incorrect API key provided: " + _mask(key) if key else "Missing bearer authentication"
            return connection.respond(HTTPStatus.UNAUTHORIZED, message + "\n")
        return None

    async def _handler(self, ws: ServerConnection) -> None:
        self.stats.connections += 1
        assert ws.request is not None
        protocol = LiveProtocol(side="server")

        async def emit(event: ev.LiveServerEvent) -> None:
            await ws.send(protocol.send(event))

        if not self._key_ok(_bearer(ws.request)):
            self.stats.refused += 1
            await emit(self._error(RequestError("invalid_api_key", "Incorrect API key provided: "
                                                + _mask(_bearer(ws.request)) + "."), kind="authentication_error"))
            await ws.close(self.options.refusal_close_code, "invalid_api_key")
            return
        await self._serve(ws, protocol, emit)

    def _error(self, err: RequestError | MalformedEvent, *, kind: str = "invalid_request_error",
               client_event_id: str | None = None) -> ev.LiveErrorEvent:
        message = err.message if isinstance(err, RequestError) else str(err)
        detail = LiveErrorDetail(type=kind, code=err.code, message=message, param=err.param,
                                 client_event_id=client_event_id)
        return ev.LiveErrorEvent(event_id=self._ids("event"), error=detail, client_event_id=client_event_id)

    async def _serve(self, ws: ServerConnection, protocol: LiveProtocol,
                     emit: Callable[[ev.LiveServerEvent], Awaitable[None]]) -> None:
        started = time.monotonic()
        limit = self.options.session_limit_s
        sim = LiveSimSession(emit, options=self.options, ids=self._ids, expires_at=int(time.time() + limit),
                             elapsed_s=lambda: round(time.monotonic() - started, 1))
        self.stats.sessions.append(sim)
        self._connections.add(ws)
        timers = [asyncio.create_task(self._expire(ws, sim, limit), name="live-sim-expiry"),
                  asyncio.create_task(self._usage(sim), name="live-sim-usage")]
        try:
            async for frame in ws:
                self.stats.frames_in += 1
                try:
                    event = protocol.receive_text(frame)
                except MalformedEvent as bad:
                    await emit(self._error(bad, client_event_id=bad.event_id))
                    continue
                await sim.handle(event)  # type: ignore[arg-type]
                if sim.state == "refused":
                    await ws.close(self.options.refusal_close_code, "model_not_found")
                elif sim.state == "closed":
                    await ws.close(1000, "session closed")
        except ConnectionClosed:
            pass
        finally:
            self._connections.discard(ws)
            for timer in timers:
                timer.cancel()
            sim.stop_speaking()

    async def _usage(self, sim: LiveSimSession) -> None:
        while True:
            await asyncio.sleep(self.options.usage_interval_s)
            if sim.state == "active":
                with contextlib.suppress(ConnectionClosed):
                    await sim.usage(sim.elapsed_s())

    async def _expire(self, ws: ServerConnection, sim: LiveSimSession, limit_s: float) -> None:
        await asyncio.sleep(limit_s)
        self.stats.expired += 1
        with contextlib.suppress(ConnectionClosed):
            await sim.closed("expired", sim.elapsed_s())
            await ws.close(1000, "session expired")


async def serve_forever(options: LiveSimOptions, host: str, port: int) -> None:
    sim = await LiveSimulator(options).start(host, port)
    print(f"pivoice simulator (GPT-Live) on ws://{host}:{sim.port}/v1/live/sessions", flush=True)
    try:
        await asyncio.Future()
    finally:
        await sim.stop()
