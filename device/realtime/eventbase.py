"""The base of every event model (Realtime and GPT-Live): the registries and their decorators.

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


def registrar(registry: dict[str, Any]) -> Callable[[str], Callable[[type[E]], type[E]]]:
    """A class decorator factory: ``@named("session.created")`` gives the event its wire type
    and adds it to ``registry`` (one registry per API and direction; GPT-Live's use it too)."""
    def named(name: str) -> Callable[[type[E]], type[E]]:
        def register(cls: type[E]) -> type[E]:
            cls.TYPE = name
            registry[name] = cls
            return cls
        return register
    return named


_server = registrar(SERVER_EVENTS)
_client = registrar(CLIENT_EVENTS)


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


