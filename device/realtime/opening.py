"""Opening one Realtime session: connect, configure, wait until the server took the settings."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from ..errors import AuthenticationError, RejectedSetupError
from . import events as ev
from .connection import Endpoint, RealtimeConnection
from .dialect import render_session
from .session import SessionSettings
from .timing import Options


async def open_configured(endpoint: Endpoint, settings: SessionSettings, options: Options,
                          clock: Callable[[], float]) -> tuple[RealtimeConnection, float]:
    """(a configured connection, when the server created the session by ``clock``)."""
    if not endpoint.api_key:
        raise AuthenticationError("no API key is set", fix="put it in /etc/pivoice/openai_api_key (root only, "
                                  "install.sh --key-file does it) or OPENAI_API_KEY, then systemctl reload pivoice")
    conn = await RealtimeConnection.open(endpoint, open_timeout_s=options.open_timeout_s,
                                         ping_interval_s=options.ping_interval_s,
                                         ping_timeout_s=options.ping_timeout_s)
    try:
        created_at = clock()
        await conn.send(ev.SessionUpdate(session=render_session(settings, endpoint.dialect, model=endpoint.model)))
        async with asyncio.timeout(options.open_timeout_s):   # wait_for can swallow a cancellation
            await _until_updated(conn)
    except BaseException:
        await conn.close()
        raise
    return conn, created_at


async def _until_updated(conn: RealtimeConnection) -> None:
    async for event in conn:
        if isinstance(event, ev.SessionUpdated):
            return
        if isinstance(event, ev.ErrorEvent):
            raise RejectedSetupError(f"the server rejected the session settings: {event.code} "
                                     f"({event.error.param or 'no parameter named'})", code=event.code,
                                     fix="check [realtime] voice, model and [turns] in the config")
