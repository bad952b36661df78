"""The sans-I/O GPT-Live protocol: text frames in, typed events out, and back.

No sockets, no asyncio, no clock. The device's connection and the built-in Live simulator
both use it, so what one sends the other parses by the same rules.

* ``LiveProtocol(side="client")`` parses server events and serialises client events.
* ``LiveProtocol(side="server")`` parses client events (``session.start`` strictly, as the
  real service does: section 2) and serialises server events.

A frame that is not JSON, not an object, has no ``type``, lacks a required field or has a
field of the wrong type raises :class:`MalformedEvent` (a
:class:`~device.errors.RemoteProtocolError`) carrying the error ``code``/``param`` a server
would answer with; the caller reports it and carries on. An unknown server event type becomes
:class:`~device.live.events.UnknownEvent`.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Literal, TypeVar

from ..errors import LocalProtocolError, RemoteProtocolError
from ..realtime.models import MissingField
from .events import CLIENT_EVENTS, SERVER_EVENTS, LiveClientEvent, LiveEvent, LiveServerEvent, UnknownEvent
from .validate import RequestError, check_client_event

logger = logging.getLogger(__name__)

E = TypeVar("E", bound=LiveEvent)


class MalformedEvent(RemoteProtocolError):
    """A frame that is not a valid Live event; ``code`` and ``param`` name what is wrong."""

    def __init__(self, message: str, *, code: str = "invalid_event", param: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.param = param
        #: The rejected frame's own ``event_id`` when it had one, echoed as ``client_event_id``.
        self.event_id: str | None = None


class LiveProtocol:
    def __init__(self, *, side: Literal["client", "server"] = "client") -> None:
        self.side = side
        self.frames_received = 0
        self.frames_rejected = 0

    # ---------------------------------------------------------------------------- parsing
    def receive_text(self, frame: str | bytes) -> LiveEvent:
        """Parse one WebSocket message into a typed event, or raise :class:`MalformedEvent`."""
        self.frames_received += 1
        try:
            data = _decode(frame)
            return self._server_event(data) if self.side == "client" else self._client_event(data)
        except MalformedEvent:
            self.frames_rejected += 1
            raise

    def _server_event(self, data: dict[str, Any]) -> LiveServerEvent:
        name = data["type"]
        cls = SERVER_EVENTS.get(name)
        if cls is None:
            logger.debug("unknown Live server event type %r", name)
            event_id = data.get("event_id")
            return UnknownEvent(raw_type=name, data=data, event_id=event_id if isinstance(event_id, str) else None)
        return _typed(cls, data, name)

    def _client_event(self, data: dict[str, Any]) -> LiveClientEvent:
        try:
            return self._checked_client_event(data)
        except MalformedEvent as exc:
            event_id = data.get("event_id")
            exc.event_id = event_id if isinstance(event_id, str) else None
            raise

    def _checked_client_event(self, data: dict[str, Any]) -> LiveClientEvent:
        name = data["type"]
        cls = CLIENT_EVENTS.get(name)
        if cls is None:
            listed = ", ".join(f"'{t}'" for t in CLIENT_EVENTS)
            raise MalformedEvent(f"Invalid value: '{name}'. Supported values are: {listed}.",
                                 code="invalid_value", param="type")
        try:
            check_client_event(data)
        except RequestError as exc:
            raise MalformedEvent(exc.message, code=exc.code, param=exc.param) from None
        return _typed(cls, data, name)

    # ------------------------------------------------------------------------ serialising
    def send(self, event: LiveEvent) -> str:
        """One text frame for ``event``; only the registered events of this side's direction."""
        registry = CLIENT_EVENTS if self.side == "client" else SERVER_EVENTS
        if type(event) is UnknownEvent or registry.get(event.type) is not type(event):
            raise LocalProtocolError(f"{type(event).__name__} cannot be sent by the Live {self.side}")
        return json.dumps(event.to_dict(), separators=(",", ":"))


def _decode(frame: str | bytes) -> dict[str, Any]:
    if isinstance(frame, (bytes, bytearray, memoryview)):
        raise MalformedEvent("Expected a text WebSocket message; binary frames are not supported.")
    try:
        data = json.loads(frame)
    except ValueError as exc:
        raise MalformedEvent(f"Invalid event: failed to parse JSON value. {exc}", code="invalid_json") from None
    if not isinstance(data, dict):
        raise MalformedEvent("Invalid event: expected a JSON object.")
    if not isinstance(data.get("type"), str):
        raise MalformedEvent("The 'type' field is missing.", param="type")
    return data


def _typed(cls: type[E], data: dict[str, Any], name: str) -> E:
    try:
        return cls.from_dict(data, where=name)
    except MissingField as exc:
        param = f"{exc.where[len(name):]}.{exc.name}".lstrip(".")
        raise MalformedEvent(f"{name}: missing required parameter '{param}'.",
                             code="missing_required_parameter", param=param) from None
    except MalformedEvent:
        raise
    except RemoteProtocolError as exc:
        raise MalformedEvent(str(exc), code="invalid_value") from None
    except (TypeError, AttributeError) as exc:
        # A field of the wrong JSON type that the models hold as-is (e.g. a list for an object).
        raise MalformedEvent(f"{name}: a field has the wrong type ({exc})", code="invalid_type") from None
