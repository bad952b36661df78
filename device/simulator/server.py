"""The built-in Realtime server: ``pivoice simulator --port N [--dialect ga|beta]``.

Checks the upgrade the way the real service does (reference section 3, simulator checklist
section 11): the upgrade always succeeds, then a bad key gets an ``error`` and close 3000, a
missing or unknown model or the retired beta header gets close 4000. Then ``session.created``
with ``expires_at``, events through :class:`SimSession`, server pings, and at the time limit
``session_expired`` followed by close 1001.

Client secrets (section 3.1) are minted by ``POST /v1/realtime/client_secrets`` on a second,
plain-HTTP port (:attr:`RealtimeSimulator.http_url`): the websockets server cannot read a
request body. A minted ``ek_…`` key opens sessions until it expires; an unknown or expired
one is refused like a bad key (error ``invalid_api_key`` + close 3000; the wording the real
server uses for an expired secret is not in the reference).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from ..httpjson import serve_json
from ..realtime import events as ev
from ..realtime.dialect import Dialect
from ..realtime.models import ErrorDetail
from ..realtime.protocol import InvalidFrame, RealtimeProtocol
from .config import SimError, apply_update
from .loopback import LoopbackServer
from .secrets import Minted, SecretStore
from .session import Ids, SimSession

logger = logging.getLogger(__name__)

PATHS = ("/v1/realtime", "/openai/v1/realtime", "/openai/realtime")
MODEL_PREFIXES = ("gpt-realtime", "gpt-4o-realtime-preview", "gpt-4o-mini-realtime-preview")


@dataclass
class SimulatorOptions:
    dialect: Dialect = Dialect.GA
    #: Session limit in seconds; the real service has 3600 (GA), 1800 (Azure).
    session_limit_s: float = 3600.0
    #: Accepted keys; empty accepts any non-empty key.
    api_keys: frozenset[str] = frozenset()
    speedup: float = 4.0
    first_audio_delay_s: float = 0.05
    ping_interval_s: float | None = 20.0
    quirks: bool = True
    seed: int | None = None
    #: Port of the plain-HTTP listener for client secrets (0 picks one; None: no listener).
    http_port: int | None = 0
    #: Wall clock in epoch seconds (session expires_at, client secret expiry); tests pass their own.
    clock: Callable[[], float] = time.time

    def __post_init__(self) -> None:
        self.dialect = Dialect(self.dialect)


@dataclass
class SimulatorStats:
    connections: int = 0
    expired: int = 0
    frames_in: int = 0
    sessions: list[SimSession] = field(default_factory=list)


def _mask(key: str) -> str:
    return f"{key[:3]}…{key[-4:]}" if len(key) > 8 else "…"


class RealtimeSimulator(LoopbackServer):
    def __init__(self, options: SimulatorOptions | None = None) -> None:
        self.options = options or SimulatorOptions()
        self.stats = SimulatorStats()
        self._ids = Ids(self.options.seed)
        super().__init__()
        self._http: asyncio.Server | None = None
        self.secrets = SecretStore(self._ids, self.options.clock, self._key_ok)

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/v1/realtime"

    @property
    def http_url(self) -> str:
        """The REST base for ``POST {http_url}/realtime/client_secrets``."""
        assert self._http is not None, "start() with http_port set first"
        return f"http://127.0.0.1:{self._http.sockets[0].getsockname()[1]}/v1"

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> RealtimeSimulator:
        self._server = await serve(self._handler, host, port, process_request=self._check_path,
                                   ping_interval=self.options.ping_interval_s, ping_timeout=20,
                                   max_size=16 * 1024 * 1024, max_queue=256, close_timeout=1.0)
        logger.info("Realtime simulator (%s) listening on ws://%s:%d/v1/realtime",
                    self.options.dialect, host, self.port)
        if self.options.http_port is not None:
            self._http = await serve_json(self.secrets.handle, host, self.options.http_port)
        return self

    async def stop(self) -> None:
        if self._http:
            self._http.close()
            await self._http.wait_closed()
        await super().stop()

    def _key_ok(self, key: str) -> bool:
        return not self.options.api_keys or key in self.options.api_keys

    def _check_path(self, connection: ServerConnection, request: Request) -> Response | None:
        if urlsplit(request.path).path.rstrip("/") not in PATHS:
            return connection.respond(404, "Not found: the Realtime endpoint is /v1/realtime\n")
        return None

    def _refusal(self, request: Request) -> tuple[str | None, str, int, str] | None:
        """(code, message, close code, close reason) when the upgrade is refused in-band."""
        headers: Headers = request.headers
        key = self._key(headers)
        if not key:
            return None, "Missing bearer or basic authentication in header", 3000, "invalid_request_error"
        secret = self.secrets.lookup(key) if key.startswith("ek_") else None
        if (key.startswith("ek_") and secret is None) or (not key.startswith("ek_") and not self._key_ok(key)):
            return ("invalid_api_key", f"Incorrect API key provided: {_mask(key)}. You can find your API key "
                    "at https://platform.openai.com/account/api-keys.", 3000, "invalid_request_error.invalid_api_key")
        if self.options.dialect is Dialect.GA and headers.get("OpenAI-Beta"):
            return ("beta_api_shape_disabled", "The Realtime Beta API is no longer supported. Please use "
                    "/v1/realtime for the GA API.", 4000, "invalid_request_error.beta_api_shape_disabled")
        model = self._model(request, secret)
        if not model:
            return ("missing_model", "You must provide a model parameter, for example "
                    "wss://api.openai.com/v1/realtime?model=gpt-realtime-1.5", 4000,
                    "invalid_request_error.missing_model")
        if "deployment" not in parse_qs(urlsplit(request.path).query) and not model.startswith(MODEL_PREFIXES):
            return ("invalid_model", f'Model "{model}" is not supported in realtime mode.', 4000,
                    "invalid_request_error.invalid_model")
        return None

    async def _handler(self, ws: ServerConnection) -> None:
        self.stats.connections += 1
        request = ws.request
        assert request is not None
        refusal = self._refusal(request)
        if refusal:
            code, message, close_code, reason = refusal
            err = ev.ErrorEvent(event_id=self._ids("event"), error=ErrorDetail(
                type="invalid_request_error", code=code, message=message, param=None, event_id=None))
            await ws.send(RealtimeProtocol(self.options.dialect, side="server").send(err) or "")
            await ws.close(close_code, reason)
            return
        key = self._key(request.headers)
        secret = self.secrets.lookup(key) if key.startswith("ek_") else None
        await self._serve_session(ws, self._model(request, secret), secret)

    @staticmethod
    def _key(headers: Headers) -> str:
        auth = headers.get("Authorization", "")
        return auth[7:] if auth.startswith("Bearer ") else headers.get("api-key", "")

    @staticmethod
    def _model(request: Request, secret: Minted | None) -> str:
        """The query's model (or deployment); a client secret's own model when there is none."""
        query = parse_qs(urlsplit(request.path).query)
        model = (query.get("model") or query.get("deployment") or [""])[0]
        return model or (str(secret.session.get("model") or "") if secret else "")

    async def _serve_session(self, ws: ServerConnection, model: str, secret: Minted | None = None) -> None:
        protocol = RealtimeProtocol(self.options.dialect, side="server")
        started = self.options.clock()
        limit = self.options.session_limit_s

        async def emit(event: ev.ServerEvent) -> None:
            frame = protocol.send(event)
            if frame is not None:
                await ws.send(frame)

        sim = SimSession(emit, dialect=self.options.dialect, model=model, expires_at=int(started + limit),
                         ids=self._ids, speedup=self.options.speedup,
                         first_audio_delay_s=self.options.first_audio_delay_s, quirks=self.options.quirks)
        if secret is not None:
            self._bake(sim, secret.session)
        self.stats.sessions.append(sim)
        self._connections.add(ws)
        expiry = asyncio.create_task(self._expire(ws, sim, limit), name="sim-expiry")
        try:
            await sim.start()
            async for frame in ws:
                self.stats.frames_in += 1
                try:
                    event = protocol.receive_text(frame)
                except InvalidFrame as bad:
                    await emit(ev.ErrorEvent(event_id=self._ids("event"), error=ErrorDetail(
                        type="invalid_request_error", code=bad.code, message=str(bad), param=bad.param)))
                    continue
                await sim.handle(event)  # type: ignore[arg-type]
        except ConnectionClosed:
            pass
        finally:
            self._connections.discard(ws)
            expiry.cancel()
            await sim.close()

    def _bake(self, sim: SimSession, baked: dict[str, Any]) -> None:
        """A secret's session configuration applies to the sessions it starts (section 3.1)."""
        update = {k: v for k, v in baked.items() if k not in ("model", "expires_at")}
        try:
            sim.session = apply_update(sim.session, {**update, "type": "realtime"}, self.options.dialect,
                                       has_assistant_audio=False)
        except SimError as err:
            logger.warning("simulator: a client secret's session config was not applied: %s", err.message)

    async def _expire(self, ws: ServerConnection, sim: SimSession, limit_s: float) -> None:
        await asyncio.sleep(limit_s)
        minutes = limit_s / 60
        span = f"{minutes:g} minutes" if minutes == int(minutes) else f"{limit_s:g} seconds"
        message = f"Your session hit the maximum duration of {span}."
        self.stats.expired += 1
        with contextlib.suppress(ConnectionClosed):
            await sim.error(SimError("session_expired", message))
            await ws.close(1001, message)


async def serve_forever(options: SimulatorOptions, host: str, port: int) -> None:
    sim = await RealtimeSimulator(options).start(host, port)
    print(f"pivoice simulator ({options.dialect}) on ws://{host}:{sim.port}/v1/realtime", flush=True)
    if options.http_port is not None:
        print(f"client secrets: POST {sim.http_url.replace('127.0.0.1', host)}/realtime/client_secrets", flush=True)
    try:
        await asyncio.Future()
    finally:
        await sim.stop()
