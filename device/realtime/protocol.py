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
import re
from typing import Any, Literal

from ..errors import LocalProtocolError, RemoteProtocolError
from . import dialect as dialects
from .dialect import Dialect
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
from .models import MissingField

logger = logging.getLogger(__name__)


#: Deepest JSON nesting accepted; real events nest about 6 deep. Deeper frames are refused
#: before ``json.loads`` so its recursion can never reach Python's limit.
MAX_DEPTH = 64
#: Largest text frame accepted (the client's WebSocket ``max_size`` is the same figure).
MAX_FRAME_BYTES = 16 * 1024 * 1024
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_BRACKETS = re.compile(r"[\[\]{}]")


class InvalidFrame(RemoteProtocolError):
    """A frame the server side rejects; ``code`` is the real server's error code for it.

    ``kind`` names the class of defect for counters (``json``, ``depth``, ``too_large``...).
    """

    def __init__(self, message: str, *, code: str, param: str | None = None, kind: str = "invalid") -> None:
        super().__init__(message)
        self.code = code
        self.param = param
        self.kind = kind


def frame_kind(exc: RemoteProtocolError) -> str:
    """The counter name for a rejected frame."""
    return str(getattr(exc, "kind", "invalid"))


def nesting_depth_ok(text: str, limit: int = MAX_DEPTH) -> bool:
    """Whether no object/array in ``text`` nests deeper than ``limit`` (brackets in strings don't count)."""
    if text.count("{") + text.count("[") <= limit:
        return True  # the common case, audio frames included: no scan needed
    depth = 0
    for match in _BRACKETS.finditer(_JSON_STRING.sub("", text)):
        depth += 1 if match.group() in "[{" else -1
        if depth > limit:
            return False
    return True


class UnsupportedEventType(InvalidFrame):
    pass


class RealtimeProtocol:
    def __init__(self, dialect: Dialect = Dialect.GA, *, side: Literal["client", "server"] = "client") -> None:
        self.dialect = Dialect(dialect)
        self.side = side
        self.frames_received = 0
        self.frames_rejected = 0
        #: Rejected frames by kind (see :func:`frame_kind`).
        self.rejected: dict[str, int] = {}

    # ---------------------------------------------------------------------------- parsing
    def receive_text(self, frame: str | bytes) -> Event:
        """Parse one WebSocket message into a typed event."""
        self.frames_received += 1
        try:
            data = self._decode(frame)
            if self.side == "client":
                return self._parse_server_event(data)
            return self._parse_client_event(data)
        except RemoteProtocolError as exc:
            self._reject(frame_kind(exc))
            raise
        except (ValueError, TypeError, KeyError, AttributeError, RecursionError) as exc:
            # A shape the models did not foresee: still one bad frame, never a dead link.
            self._reject("unexpected")
            raise InvalidFrame(f"Invalid event: {exc.__class__.__name__}: {exc}"[:300], code="invalid_event",
                               kind="unexpected") from None

    def _reject(self, kind: str) -> None:
        self.frames_rejected += 1
        self.rejected[kind] = self.rejected.get(kind, 0) + 1

    def _decode(self, frame: str | bytes) -> dict[str, Any]:
        if isinstance(frame, (bytes, bytearray)):
            raise InvalidFrame("Expected a text WebSocket message; binary frames are not supported.",
                               code="invalid_event", kind="binary")
        if len(frame) > MAX_FRAME_BYTES:
            raise InvalidFrame(f"Invalid event: a frame of {len(frame)} characters is too large.",
                               code="invalid_event", kind="too_large")
        if not nesting_depth_ok(frame):
            raise InvalidFrame(f"Invalid event: JSON nested deeper than {MAX_DEPTH} levels.",
                               code="invalid_json", kind="depth")
        try:
            data = json.loads(frame)  # Infinity/NaN pass here (a seed has one); typed fields refuse them
        except (ValueError, RecursionError) as exc:
            raise InvalidFrame(f"Invalid event: failed to parse JSON value. {exc}"[:300], code="invalid_json",
                               kind="json") from None
        if not isinstance(data, dict):
            raise InvalidFrame("Invalid event: expected a JSON object.", code="invalid_event", kind="not_object")
        if not isinstance(data.get("type"), str):
            raise InvalidFrame("The 'type' field is missing.", code="invalid_event", param="type", kind="no_type")
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
