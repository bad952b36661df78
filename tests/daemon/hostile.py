"""A scripted Realtime server for the cases the simulator must not do: a session that is
already expired by the device's clock, a reply that never finishes, audio without an end,
a flood. Real WebSocket on loopback, raw JSON frames, independent of the project's protocol
core; bounded in what it sends."""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import time
from collections.abc import Awaitable, Callable

from websockets.asyncio.server import ServerConnection, serve

Script = Callable[["HostileServer", ServerConnection, dict], Awaitable[None]]


class HostileServer:
    def __init__(self, *, expires_in_s: float = 3600.0, on_response: Script | None = None,
                 close_after_setup: bool = False) -> None:
        self.expires_in_s = expires_in_s
        self.on_response = on_response
        self.close_after_setup = close_after_setup
        self.connections = 0
        self.received: list[dict] = []
        self._ids = itertools.count(1)
        self._server = None

    @property
    def url(self) -> str:
        port = self._server.sockets[0].getsockname()[1]
        return f"ws://127.0.0.1:{port}/v1/realtime"

    async def start(self) -> HostileServer:
        self._server = await serve(self._handler, "127.0.0.1", 0, max_size=None)
        return self

    async def stop(self) -> None:
        self._server.close()
        await self._server.wait_closed()

    def id(self, prefix: str) -> str:
        return f"{prefix}_{next(self._ids):06d}"

    async def send(self, ws: ServerConnection, event: dict) -> None:
        await ws.send(json.dumps({"event_id": self.id("event"), **event}))

    async def _handler(self, ws: ServerConnection) -> None:
        self.connections += 1
        session = {"type": "realtime", "object": "realtime.session", "id": self.id("sess"), "model": "gpt-realtime",
                   "output_modalities": ["audio"], "expires_at": int(time.time() + self.expires_in_s),
                   "audio": {"input": {"format": {"type": "audio/pcm", "rate": 24000}, "turn_detection": None},
                             "output": {"format": {"type": "audio/pcm", "rate": 24000}, "voice": "marin"}}}
        await self.send(ws, {"type": "session.created", "session": session})
        async for frame in ws:
            event = json.loads(frame)
            self.received.append(event)
            kind = event.get("type")
            if kind == "session.update":
                await self.send(ws, {"type": "session.updated", "session": session})
                if self.close_after_setup:
                    await ws.close(1001, "going away")
                    return
            elif kind == "response.create" and self.on_response is not None:
                await self.on_response(self, ws, event)


def audio_delta(server: HostileServer, response_id: str, item_id: str, pcm: bytes) -> dict:
    return {"type": "response.output_audio.delta", "response_id": response_id, "item_id": item_id,
            "output_index": 0, "content_index": 0, "delta": base64.b64encode(pcm).decode()}


async def created_only(server: HostileServer, ws: ServerConnection, request: dict) -> None:
    """response.created, then nothing ever again."""
    await server.send(ws, {"type": "response.created", "response": {"id": server.id("resp"), "status": "in_progress",
                                                                     "output": []}})


async def deltas_without_done(server: HostileServer, ws: ServerConnection, request: dict) -> None:
    """A second of speech-loud audio, then no done of any kind."""
    response_id, item_id = server.id("resp"), server.id("item")
    await server.send(ws, {"type": "response.created", "response": {"id": response_id, "status": "in_progress",
                                                                     "output": []}})
    tone = (b"\x00\x20\x00\xe0" * 120)  # 240 samples of a loud square wave: 10 ms
    for _ in range(100):
        await server.send(ws, audio_delta(server, response_id, item_id, tone))


async def flood(server: HostileServer, ws: ServerConnection, request: dict) -> None:
    """60 deltas of 3 MB each (a minute of audio each) at wire speed, then done."""
    response_id, item_id = server.id("resp"), server.id("item")
    await server.send(ws, {"type": "response.created", "response": {"id": response_id, "status": "in_progress",
                                                                     "output": []}})
    chunk = bytes(3_000_000)
    for _ in range(60):
        await server.send(ws, audio_delta(server, response_id, item_id, chunk))
        await asyncio.sleep(0)
    await server.send(ws, {"type": "response.output_audio.done", "response_id": response_id, "item_id": item_id,
                           "output_index": 0, "content_index": 0})
    await server.send(ws, {"type": "response.done", "response": {"id": response_id, "status": "completed",
                                                                  "output": []}})
