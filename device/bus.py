"""The one event bus: components publish what happened; LEDs, metrics, the watchdog and the
control socket consume it. Publishing never blocks and never fails: a slow consumer loses its
oldest events (and the count of what it lost), not the publisher's time."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BusEvent:
    """Base for everything on the bus: a kind, when it happened (monotonic s), details."""

    kind: str
    at: float = 0.0
    data: dict[str, Any] = field(default_factory=dict)


class Subscription:
    def __init__(self, bus: EventBus, maxsize: int) -> None:
        self._bus = bus
        self.queue: asyncio.Queue[BusEvent] = asyncio.Queue(maxsize)
        self.dropped = 0

    def put(self, event: BusEvent) -> None:
        if self.queue.full():
            self.queue.get_nowait()
            self.dropped += 1
        self.queue.put_nowait(event)

    async def get(self) -> BusEvent:
        return await self.queue.get()

    def close(self) -> None:
        self._bus._subs.discard(self)

    def __aiter__(self) -> AsyncIterator[BusEvent]:
        return self._iter()

    async def _iter(self) -> AsyncIterator[BusEvent]:
        try:
            while True:
                yield await self.queue.get()
        finally:
            self.close()


class EventBus:
    """Subscribers get events through a queue (tasks); listeners are called at once, in the
    publisher's call, after every queue got the event (for consumers that must not lag, such
    as the state machine: what they publish in turn comes after the event that caused it)."""

    def __init__(self) -> None:
        self._subs: set[Subscription] = set()
        self._listeners: list[Callable[[BusEvent], None]] = []
        self.published = 0

    def publish(self, event: BusEvent) -> None:
        """Deliver to every subscriber now; call only from the event loop's thread."""
        self.published += 1
        for sub in list(self._subs):
            sub.put(event)
        for listener in self._listeners:
            listener(event)

    def listen(self, listener: Callable[[BusEvent], None]) -> None:
        self._listeners.append(listener)

    def subscribe(self, maxsize: int = 1000) -> Subscription:
        sub = Subscription(self, maxsize)
        self._subs.add(sub)
        return sub
