"""The base of every Realtime event model: the two registries and their decorators.

Server events are in :mod:`device.realtime.events`, client events in
:mod:`device.realtime.client_events`; both register here (one registry per direction).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

from .models import Model

SERVER_EVENTS: dict[str, type[ServerEvent]] = {}
CLIENT_EVENTS: dict[str, type[ClientEvent]] = {}

E = TypeVar("E", bound="Event")


@dataclass(frozen=True, kw_only=True)
class Event(Model):
    TYPE: ClassVar[str] = ""
    event_id: str | None = None

    @property
    def type(self) -> str:
        return self.TYPE

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.TYPE, **super().to_dict()}


class ServerEvent(Event):
    """Something the server said."""


class ClientEvent(Event):
    """Something the device says; only these can be sent."""


def _server(name: str) -> Callable[[type[E]], type[E]]:
    def register(cls: type[E]) -> type[E]:
        cls.TYPE = name
        SERVER_EVENTS[name] = cls  # type: ignore[assignment]
        return cls
    return register


def _client(name: str) -> Callable[[type[E]], type[E]]:
    def register(cls: type[E]) -> type[E]:
        cls.TYPE = name
        CLIENT_EVENTS[name] = cls  # type: ignore[assignment]
        return cls
    return register


@dataclass(frozen=True, kw_only=True)
class UnknownEvent(ServerEvent):
    """A server event type this version does not know; kept, logged at debug, never fatal."""

    raw_type: str = ""
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def type(self) -> str:
        return self.raw_type

    def to_dict(self) -> dict[str, Any]:
        return dict(self.data)


