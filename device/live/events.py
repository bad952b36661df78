"""Every GPT-Live event, as typed models, in one registry per direction (reference section 3).

Client events (11 types) are only ever built from these models; server events are only ever
parsed into them through :data:`SERVER_EVENTS`. A server event type not listed here becomes
:class:`UnknownEvent` (kept, never fatal). Fields required by the reference have no default.

Live has no ``done`` events, no turn events and no ``response.done``: audio deltas and the two
transcripts just flow, and the model decides when to speak and when to stop (section 4).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any, Self

from ..errors import LocalProtocolError, RemoteProtocolError
from ..realtime.eventbase import Event, registrar
from .models import (
    CLOSE_REASONS,
    MAX_APPEND_TOKENS,
    ContextWindow,
    DelegationInfo,
    FunctionCall,
    FunctionCallOutput,
    LiveErrorDetail,
    SessionConfig,
    SessionResource,
    Usage,
    estimate_tokens,
)

SERVER_EVENTS: dict[str, type[LiveServerEvent]] = {}
CLIENT_EVENTS: dict[str, type[LiveClientEvent]] = {}


class LiveEvent(Event):
    """A GPT-Live event: the same model base as the Realtime events, its own registries."""


class LiveServerEvent(LiveEvent):
    """Something the Live server said."""


class LiveClientEvent(LiveEvent):
    """Something the device says; only these can be sent."""


_server = registrar(SERVER_EVENTS)
_client = registrar(CLIENT_EVENTS)


def _b64decode(data: str, where: str) -> bytes:
    try:
        return base64.b64decode(data, validate=True)
    except ValueError as exc:
        raise RemoteProtocolError(f"{where}: audio is not base64") from exc


@dataclass(frozen=True, kw_only=True)
class UnknownEvent(LiveServerEvent):
    """A server event type this version does not know (e.g. sideband ``transport.*``)."""

    raw_type: str = ""
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def type(self) -> str:
        return self.raw_type

    def to_dict(self) -> dict[str, Any]:
        return dict(self.data)


# --------------------------------------------------------------------- server: session
@_server("session.started")
@dataclass(frozen=True, kw_only=True)
class SessionStarted(LiveServerEvent):
    session: SessionResource
    client_event_id: str | None = None


@_server("session.updated")
@dataclass(frozen=True, kw_only=True)
class SessionUpdated(LiveServerEvent):
    session: SessionResource
    client_event_id: str | None = None


@_server("session.closed")
@dataclass(frozen=True, kw_only=True)
class SessionClosed(LiveServerEvent):
    reason: str
    session: SessionResource | None = None
    usage: Usage | None = None
    client_event_id: str | None = None

    @property
    def expired(self) -> bool:
        return self.reason == "expired"

    @property
    def known_reason(self) -> bool:
        return self.reason in CLOSE_REASONS


@_server("session.usage.updated")
@dataclass(frozen=True, kw_only=True)
class UsageUpdated(LiveServerEvent):
    usage: Usage
    context_window: ContextWindow | None = None


# ----------------------------------------------------------------------- server: audio
@_server("session.output_audio.delta")
@dataclass(frozen=True, kw_only=True)
class OutputAudioDelta(LiveServerEvent):
    """Model speech in the session format; no ``event_id`` and no done event (section 3b).
    ``start_ms``/``end_ms`` are absent on the primary WebSocket per the SDK, present in
    Azure's examples: parsed when there."""

    delta: str
    start_ms: int | None = None
    end_ms: int | None = None

    @property
    def audio(self) -> bytes:
        return _b64decode(self.delta, self.TYPE)

    @classmethod
    def from_audio(cls, data: bytes, **kwargs: Any) -> OutputAudioDelta:
        return cls(delta=base64.b64encode(data).decode("ascii"), **kwargs)


@dataclass(frozen=True, kw_only=True)
class _TimedDelta(LiveServerEvent):
    delta: str
    start_ms: int
    end_ms: int
    client_event_id: str | None = None


@_server("session.input_transcript.delta")
@dataclass(frozen=True, kw_only=True)
class InputTranscriptDelta(_TimedDelta):
    """What the person said, on the session timeline; always on, never completed."""


@_server("session.output_transcript.delta")
@dataclass(frozen=True, kw_only=True)
class OutputTranscriptDelta(_TimedDelta):
    """What the model said, on the session timeline."""


@_server("session.input_audio.muted")
@dataclass(frozen=True, kw_only=True)
class InputAudioMuted(LiveServerEvent):
    client_event_id: str | None = None


@_server("session.input_audio.unmuted")
@dataclass(frozen=True, kw_only=True)
class InputAudioUnmuted(LiveServerEvent):
    client_event_id: str | None = None


@dataclass(frozen=True, kw_only=True)
class _Appended(LiveServerEvent):
    """Accepted into the timeline (not: acted on, or spoken)."""

    start_ms: int
    end_ms: int
    client_event_id: str | None = None


@_server("session.instructions.appended")
@dataclass(frozen=True, kw_only=True)
class InstructionsAppended(_Appended):
    pass


@_server("session.thinking.appended")
@dataclass(frozen=True, kw_only=True)
class ThinkingAppended(_Appended):
    pass


@_server("session.commentary.appended")
@dataclass(frozen=True, kw_only=True)
class CommentaryAppended(_Appended):
    pass


# ------------------------------------------------------------------ server: delegation
@_server("session.delegation.created")
@dataclass(frozen=True, kw_only=True)
class DelegationCreated(LiveServerEvent):
    delegation: DelegationInfo
    offset_ms: int | None = None


@_server("response.event")
@dataclass(frozen=True, kw_only=True)
class ResponseEvent(LiveServerEvent):
    """A nested Responses streaming event of a delegation; dispatch on :attr:`kind`."""

    event: dict[str, Any]
    delegation_id: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.event, dict) or not isinstance(self.event.get("type"), str):
            raise RemoteProtocolError("response.event: the nested event has no 'type'")

    @property
    def kind(self) -> str:
        kind: str = self.event["type"]  # a string: checked in __post_init__
        return kind

    @property
    def function_call(self) -> FunctionCall | None:
        """The function call this event completes, or None (section 8: on output_item.done)."""
        item = self.event.get("item")
        if self.kind != "response.output_item.done" or not isinstance(item, dict):
            return None
        if item.get("type") != "function_call":
            return None
        return FunctionCall.from_dict(item, where="response.event.event.item")

    @property
    def response_id(self) -> str | None:
        response = self.event.get("response")
        return response.get("id") if isinstance(response, dict) else None

    @property
    def finished(self) -> bool:
        """The backend response ended (completed, failed or incomplete)."""
        return self.kind in ("response.completed", "response.failed", "response.incomplete")


# ------------------------------------------------------------------------ server: other
@_server("error")
@dataclass(frozen=True, kw_only=True)
class LiveErrorEvent(LiveServerEvent):
    error: LiveErrorDetail
    client_event_id: str | None = None

    @property
    def code(self) -> str | None:
        return self.error.code


@_server("info")
@dataclass(frozen=True, kw_only=True)
class InfoEvent(LiveServerEvent):
    code: str
    message: str = ""


# ------------------------------------------------------------------------ client events
@_client("session.start")
@dataclass(frozen=True, kw_only=True)
class SessionStart(LiveClientEvent):
    session: SessionConfig


@_client("session.update")
@dataclass(frozen=True, kw_only=True)
class SessionUpdate(LiveClientEvent):
    """Only the delegation backend settings can change; send the complete object (section 3a)."""

    session: dict[str, Any]


@_client("session.input_audio.append")
@dataclass(frozen=True, kw_only=True)
class InputAudioAppend(LiveClientEvent):
    audio: str

    @classmethod
    def from_audio(cls, data: bytes, *, pcm16: bool = True) -> InputAudioAppend:
        if not data:
            raise LocalProtocolError("session.input_audio.append needs audio; an empty append is rejected")
        if pcm16 and len(data) % 2:
            raise LocalProtocolError(f"PCM16 audio must have an even byte count, got {len(data)}")
        return cls(audio=base64.b64encode(data).decode("ascii"))

    @property
    def data(self) -> bytes:
        return _b64decode(self.audio, self.TYPE)


@_client("session.input_audio.mute")
@dataclass(frozen=True, kw_only=True)
class InputAudioMute(LiveClientEvent):
    pass


@_client("session.input_audio.unmute")
@dataclass(frozen=True, kw_only=True)
class InputAudioUnmute(LiveClientEvent):
    pass


@dataclass(frozen=True, kw_only=True)
class _Append(LiveClientEvent):
    """``content`` (≤500 tokens) and ``delegation_id``: required, ``null`` = general context."""

    content: str
    delegation_id: str | None = field(metadata={"keep_none": True})

    @classmethod
    def general(cls, content: str, delegation_id: str | None = None) -> Self:
        if not content.strip():
            raise LocalProtocolError(f"{cls.TYPE} needs non-empty content")
        if estimate_tokens(content) > MAX_APPEND_TOKENS:
            raise LocalProtocolError(f"{cls.TYPE} content exceeds {MAX_APPEND_TOKENS} tokens")
        return cls(content=content, delegation_id=delegation_id)


@_client("session.instructions.append")
@dataclass(frozen=True, kw_only=True)
class InstructionsAppend(_Append):
    pass


@_client("session.thinking.append")
@dataclass(frozen=True, kw_only=True)
class ThinkingAppend(_Append):
    pass


@_client("session.commentary.append")
@dataclass(frozen=True, kw_only=True)
class CommentaryAppend(_Append):
    pass


@_client("response.item.create")
@dataclass(frozen=True, kw_only=True)
class ResponseItemCreate(LiveClientEvent):
    """A Responses input item, e.g. a ``function_call_output`` (Responses delegation only)."""

    item: dict[str, Any]

    @classmethod
    def function_output(cls, call_id: str, output: str) -> ResponseItemCreate:
        return cls(item=FunctionCallOutput(call_id=call_id, output=output).to_dict())


@_client("response.create")
@dataclass(frozen=True, kw_only=True)
class ResponseCreate(LiveClientEvent):
    """Continue the *backend* response after tool outputs; it never starts speech."""


@_client("session.close")
@dataclass(frozen=True, kw_only=True)
class SessionClose(LiveClientEvent):
    pass
