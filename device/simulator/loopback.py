"""What the built-in servers (Realtime and GPT-Live) share: a WebSocket server on this
machine, its port, the connections it serves, a stop, and a network loss on demand."""

from __future__ import annotations

from typing import Any, Self

from websockets.asyncio.server import Server, ServerConnection


class LoopbackServer:
    def __init__(self) -> None:
        self._server: Server | None = None
        self._connections: set[ServerConnection] = set()

    @property
    def port(self) -> int:
        assert self._server is not None, "start() first"
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> Any:
        raise NotImplementedError

    async def stop(self) -> None:
        if self._server:
            self._server.close()
            await self._server.wait_closed()

    async def drop_all(self) -> None:
        """Cut every connection without a close handshake, as a network loss would."""
        for ws in list(self._connections):
            ws.transport.abort()

    async def __aenter__(self) -> Self:
        started: Self = await self.start()
        return started

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
