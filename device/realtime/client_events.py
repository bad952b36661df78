"""The events the device sends (protocol reference section 2): only these can be sent."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any, ClassVar

from ..errors import LocalProtocolError, RemoteProtocolError
from .eventbase import ClientEvent, _client
from .models import Item


# ------------------------------------------------------------------------ client events
@_client("session.update")
@dataclass(frozen=True, kw_only=True)
class SessionUpdate(ClientEvent):
    """Build it with :func:`device.realtime.session.session_update`, which renders typed
    settings in the connection's dialect; the simulator parses the raw object to validate it."""

    session: dict[str, Any]


@_client("input_audio_buffer.append")
@dataclass(frozen=True, kw_only=True)
class InputAudioAppend(ClientEvent):
    audio: str

    #: 15 MiB per event (reference section 2.1); larger appends are rejected by the server.
    MAX_BYTES: ClassVar[int] = 15 * 1024 * 1024

    @classmethod
    def from_pcm(cls, pcm: bytes) -> InputAudioAppend:
        if len(pcm) > cls.MAX_BYTES:
            raise LocalProtocolError(f"input_audio_buffer.append of {len(pcm)} bytes exceeds 15 MiB")
        return cls(audio=base64.b64encode(pcm).decode("ascii"))

    @property
    def pcm(self) -> bytes:
        try:
            return base64.b64decode(self.audio, validate=True)
        except ValueError as exc:
            raise RemoteProtocolError("input_audio_buffer.append: audio is not base64") from exc


@_client("input_audio_buffer.commit")
@dataclass(frozen=True, kw_only=True)
class InputAudioCommit(ClientEvent):
    pass


@_client("input_audio_buffer.clear")
@dataclass(frozen=True, kw_only=True)
class InputAudioClear(ClientEvent):
    pass


@_client("conversation.item.create")
@dataclass(frozen=True, kw_only=True)
class ItemCreate(ClientEvent):
    item: Item
    previous_item_id: str | None = None


@_client("conversation.item.truncate")
@dataclass(frozen=True, kw_only=True)
class ItemTruncate(ClientEvent):
    item_id: str
    content_index: int
    audio_end_ms: int


@_client("conversation.item.delete")
@dataclass(frozen=True, kw_only=True)
class ItemDelete(ClientEvent):
    item_id: str


@_client("conversation.item.retrieve")
@dataclass(frozen=True, kw_only=True)
class ItemRetrieve(ClientEvent):
    item_id: str


@_client("response.create")
@dataclass(frozen=True, kw_only=True)
class ResponseCreate(ClientEvent):
    """``response`` holds per-response overrides, rendered by the dialect (section 1.1)."""

    response: dict[str, Any] | None = None


@_client("response.cancel")
@dataclass(frozen=True, kw_only=True)
class ResponseCancel(ClientEvent):
    response_id: str | None = None


#: What the GA server lists as supported client event types (reference section 2.1).
GA_SUPPORTED_CLIENT_TYPES = (
    "session.update", "session.close", "input_audio_buffer.append",
    "session.input_audio_buffer.append", "input_audio_buffer.commit", "input_audio_buffer.clear",
    "conversation.item.create", "conversation.item.truncate", "conversation.item.delete",
    "conversation.item.retrieve", "response.create", "response.cancel",
)
BETA_SUPPORTED_CLIENT_TYPES = (
    "session.update", "transcription_session.update", "input_audio_buffer.append",
    "input_audio_buffer.commit", "input_audio_buffer.clear", "conversation.item.create",
    "conversation.item.truncate", "conversation.item.delete", "conversation.item.retrieve",
    "response.create", "response.cancel",
)

__all__ = [
    "SessionUpdate", "InputAudioAppend", "InputAudioCommit", "InputAudioClear", "ItemCreate", "ItemTruncate",
    "ItemDelete", "ItemRetrieve", "ResponseCreate", "ResponseCancel",
    "GA_SUPPORTED_CLIENT_TYPES", "BETA_SUPPORTED_CLIENT_TYPES",
]
