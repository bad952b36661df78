"""The sans-I/O Realtime protocol: text frames in, typed events out, and back.

No sockets, no asyncio, no clock. The client connection and the built-in simulator both
use this, so what one sends the other parses by the same rules.

* ``RealtimeProtocol(side="client")`` parses server events and serialises client events.
* ``RealtimeProtocol(side="server")`` parses client events and serialises server events.

A frame that is not JSON, not an object, has no ``type`` or lacks a required field raises
:class:`~device.errors.RemoteProtocolError`; the caller reports it and carries on. An unknown
server event type becomes :class:`~device.realtime.events.UnknownEvent`. An unknown client
event type (server side) raises :class:`UnsupportedEventType` so the simulator can answer it
the way the real server does.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Literal

from ..errors import LocalProtocolError, RemoteProtocolError
from . import dialect as dialects
from .dialect import Dialect
from .models import MissingField
from .events import (
    BETA_SUPPORTED_CLIENT_TYPES,
    CLIENT_EVENTS,
    GA_SUPPORTED_CLIENT_TYPES,
    SERVER_EVENTS,
    ClientEvent,
    Event,
    ServerEvent,
    UnknownEvent,
)

logger = logging.getLogger(__name__)


class InvalidFrame(RemoteProtocolError):
    """A frame the server side rejects; ``code`` is the real server's error code for it."""

    def __init__(self, message: str, *, code: str, param: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.param = param


class UnsupportedEventType(InvalidFrame):
    pass


class RealtimeProtocol:
    def __init__(self, dialect: Dialect = Dialect.GA, *, side: Literal["client", "server"] = "client") -> None:
        self.dialect = Dialect(dialect)
        self.side = side
        self.frames_received = 0
        self.frames_rejected = 0

    # ---------------------------------------------------------------------------- parsing
    def receive_text(self, frame: str | bytes) -> Event:
        """Parse one WebSocket message into a typed event."""
        self.frames_received += 1
        try:
            data = self._decode(frame)
            if self.side == "client":
                return self._parse_server_event(data)
            return self._parse_client_event(data)
        except RemoteProtocolError:
            self.frames_rejected += 1
            raise

    def _decode(self, frame: str | bytes) -> dict[str, Any]:
        if isinstance(frame, (bytes, bytearray)):
            raise InvalidFrame("Expected a text WebSocket message; binary frames are not supported.",
                               code="invalid_event")
        try:
            data = json.loads(frame)
        except ValueError as exc:
            raise InvalidFrame(f"Invalid event: failed to parse JSON value. {exc}", code="invalid_json") from None
        if not isinstance(data, dict):
            raise InvalidFrame("Invalid event: expected a JSON object.", code="invalid_event")
        if not isinstance(data.get("type"), str):
            raise InvalidFrame("The 'type' field is missing.", code="invalid_event", param="type")
        return data

    def _parse_server_event(self, data: dict[str, Any]) -> ServerEvent:
        wire_type = data["type"]
        name = dialects.canonical_event_type(wire_type, self.dialect)
        cls = SERVER_EVENTS.get(name)
        if cls is None:
            logger.debug("unknown server event type %r", wire_type)
            return UnknownEvent(raw_type=wire_type, data=data, event_id=data.get("event_id"))
        return cls.from_dict(data, where=wire_type)

    def _parse_client_event(self, data: dict[str, Any]) -> ClientEvent:
        name = data["type"]
        cls = CLIENT_EVENTS.get(name)
        if cls is None:
            supported = GA_SUPPORTED_CLIENT_TYPES if self.dialect is Dialect.GA else BETA_SUPPORTED_CLIENT_TYPES
            listed = ", ".join(f"'{t}'" for t in supported[:-1]) + f", and '{supported[-1]}'"
            raise UnsupportedEventType(f"Invalid value: '{name}'. Supported values are: {listed}.",
                                       code="invalid_value", param="type")
        try:
            return cls.from_dict(data, where=name)
        except MissingField as exc:
            param = f"{exc.where[len(name):]}.{exc.name}".lstrip(".")
            raise InvalidFrame(f"Missing required parameter: '{param}'.",
                               code="missing_required_parameter", param=param) from None
        except RemoteProtocolError as exc:
            raise InvalidFrame(str(exc), code="invalid_value") from None

    # ------------------------------------------------------------------------ serialising
    def send(self, event: Event) -> str | None:
        """One text frame for ``event``, or None when this dialect has no such server event."""
        if self.side == "client":
            if not isinstance(event, ClientEvent) or type(event).TYPE not in CLIENT_EVENTS:
                raise LocalProtocolError(f"{type(event).__name__} is not a client event and cannot be sent")
            data = event.to_dict()
            if "item" in data:
                data = dialects.render_event(data, self.dialect)
            return json.dumps(data, separators=(",", ":"))
        if not isinstance(event, ServerEvent):
            raise LocalProtocolError(f"{type(event).__name__} is not a server event")
        wire_type = dialects.wire_event_type(event.type, self.dialect)
        if wire_type is None:
            return None
        data = dialects.render_event(event.to_dict(), self.dialect)
        data["type"] = wire_type
        return json.dumps(data, separators=(",", ":"))
