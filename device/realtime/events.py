"""Every Realtime event a voice device sends or receives, as typed models, in one registry.

Names are the GA spellings (protocol reference section 2); the beta spellings are mapped to
these in :mod:`device.realtime.dialect`, nowhere else. Fields marked required in section 2
have no default; everything else is optional so new server fields never break parsing.
"""

from __future__ import annotations

import base64
import functools
from dataclasses import dataclass, field
from typing import Any, ClassVar

from .eventbase import CLIENT_EVENTS as CLIENT_EVENTS
from .eventbase import SERVER_EVENTS as SERVER_EVENTS
from .eventbase import ClientEvent as ClientEvent
from .eventbase import Event as Event
from .eventbase import ServerEvent as ServerEvent
from .eventbase import UnknownEvent as UnknownEvent
from .eventbase import _server
from .models import ErrorDetail, FieldError, Item, RateLimit, Response


# ---------------------------------------------------------------- server events: session
@_server("session.created")
@dataclass(frozen=True, kw_only=True)
class SessionCreated(ServerEvent):
    session: dict[str, Any]


@_server("session.updated")
@dataclass(frozen=True, kw_only=True)
class SessionUpdated(ServerEvent):
    session: dict[str, Any]


@_server("transcription_session.updated")
@dataclass(frozen=True, kw_only=True)
class TranscriptionSessionUpdated(ServerEvent):
    session: dict[str, Any]


@_server("conversation.created")
@dataclass(frozen=True, kw_only=True)
class ConversationCreated(ServerEvent):
    conversation: dict[str, Any]


# ------------------------------------------------------------ server events: conversation
@_server("conversation.item.added")
@dataclass(frozen=True, kw_only=True)
class ConversationItemAdded(ServerEvent):
    item: Item
    previous_item_id: str | None = field(default=None, metadata={"keep_none": True})


@_server("conversation.item.done")
@dataclass(frozen=True, kw_only=True)
class ConversationItemDone(ServerEvent):
    item: Item
    previous_item_id: str | None = field(default=None, metadata={"keep_none": True})


@_server("conversation.item.deleted")
@dataclass(frozen=True, kw_only=True)
class ConversationItemDeleted(ServerEvent):
    item_id: str


@_server("conversation.item.retrieved")
@dataclass(frozen=True, kw_only=True)
class ConversationItemRetrieved(ServerEvent):
    item: Item


@_server("conversation.item.truncated")
@dataclass(frozen=True, kw_only=True)
class ConversationItemTruncated(ServerEvent):
    item_id: str
    content_index: int
    audio_end_ms: int


@_server("conversation.item.input_audio_transcription.delta")
@dataclass(frozen=True, kw_only=True)
class InputTranscriptionDelta(ServerEvent):
    item_id: str
    content_index: int | None = None
    delta: str = ""


@_server("conversation.item.input_audio_transcription.completed")
@dataclass(frozen=True, kw_only=True)
class InputTranscriptionCompleted(ServerEvent):
    item_id: str
    content_index: int
    transcript: str
    usage: dict[str, Any] | None = None


@_server("conversation.item.input_audio_transcription.failed")
@dataclass(frozen=True, kw_only=True)
class InputTranscriptionFailed(ServerEvent):
    item_id: str
    content_index: int
    error: dict[str, Any]


@_server("conversation.item.input_audio_transcription.segment")
@dataclass(frozen=True, kw_only=True)
class InputTranscriptionSegment(ServerEvent):
    item_id: str
    text: str = ""
    content_index: int | None = None


# ------------------------------------------------------------ server events: input buffer
@_server("input_audio_buffer.speech_started")
@dataclass(frozen=True, kw_only=True)
class SpeechStarted(ServerEvent):
    audio_start_ms: int
    item_id: str


@_server("input_audio_buffer.speech_stopped")
@dataclass(frozen=True, kw_only=True)
class SpeechStopped(ServerEvent):
    audio_end_ms: int
    item_id: str


@_server("input_audio_buffer.committed")
@dataclass(frozen=True, kw_only=True)
class InputAudioCommitted(ServerEvent):
    item_id: str
    # Sent as null for the first item (section 2.2), not left out.
    previous_item_id: str | None = field(default=None, metadata={"keep_none": True})


@_server("input_audio_buffer.cleared")
@dataclass(frozen=True, kw_only=True)
class InputAudioCleared(ServerEvent):
    pass


@_server("input_audio_buffer.timeout_triggered")
@dataclass(frozen=True, kw_only=True)
class InputAudioTimeout(ServerEvent):
    audio_start_ms: int
    audio_end_ms: int
    item_id: str


# ---------------------------------------------------------------- server events: response
@_server("response.created")
@dataclass(frozen=True, kw_only=True)
class ResponseCreated(ServerEvent):
    response: Response


@_server("response.done")
@dataclass(frozen=True, kw_only=True)
class ResponseDone(ServerEvent):
    response: Response


@_server("response.output_item.added")
@dataclass(frozen=True, kw_only=True)
class OutputItemAdded(ServerEvent):
    response_id: str
    output_index: int
    item: Item


@_server("response.output_item.done")
@dataclass(frozen=True, kw_only=True)
class OutputItemDone(ServerEvent):
    response_id: str
    output_index: int
    item: Item


@_server("response.content_part.added")
@dataclass(frozen=True, kw_only=True)
class ContentPartAdded(ServerEvent):
    response_id: str
    item_id: str
    output_index: int = 0
    content_index: int = 0
    part: dict[str, Any] | None = None


@_server("response.content_part.done")
@dataclass(frozen=True, kw_only=True)
class ContentPartDone(ServerEvent):
    response_id: str
    item_id: str
    output_index: int = 0
    content_index: int = 0
    part: dict[str, Any] | None = None


@dataclass(frozen=True, kw_only=True)
class _ResponsePartEvent(ServerEvent):
    response_id: str
    item_id: str
    output_index: int = 0
    content_index: int = 0


@_server("response.output_audio.delta")
@dataclass(frozen=True, kw_only=True)
class AudioDelta(_ResponsePartEvent):
    delta: str

    def check(self) -> None:
        # Parsed frames are checked once here, so a bad delta is one skipped frame, not an
        # exception in the playback path that ends the session.
        pcm = _decode_audio(self.delta)
        if pcm is None:
            raise AudioFrameError("response.output_audio.delta: delta is not base64")
        self.__dict__["pcm"] = pcm[:len(pcm) - len(pcm) % 2]  # fills the cached property

    @functools.cached_property
    def pcm(self) -> bytes:
        """The audio bytes (PCM16 LE mono 24 kHz in the default format); never raises.

        A trailing odd byte (half a sample) is dropped; a delta that is not base64 (only
        possible for an event built by hand, parsed ones are checked) gives no audio.
        """
        pcm = _decode_audio(self.delta) or b""
        return pcm[:len(pcm) - len(pcm) % 2]

    @classmethod
    def from_pcm(cls, pcm: bytes, **kwargs: Any) -> AudioDelta:
        return cls(delta=base64.b64encode(pcm).decode("ascii"), **kwargs)


class AudioFrameError(FieldError):
    """An audio delta whose payload is not base64."""

    kind = "audio"


def _decode_audio(data: str) -> bytes | None:
    try:
        return base64.b64decode(data, validate=True)
    except ValueError:
        return None


@_server("response.output_audio.done")
@dataclass(frozen=True, kw_only=True)
class AudioDone(_ResponsePartEvent):
    pass


@_server("response.output_audio_transcript.delta")
@dataclass(frozen=True, kw_only=True)
class AudioTranscriptDelta(_ResponsePartEvent):
    delta: str
    #: The item's phase when the server repeats it here; else look it up on the item.
    phase: str | None = None


@_server("response.output_audio_transcript.done")
@dataclass(frozen=True, kw_only=True)
class AudioTranscriptDone(_ResponsePartEvent):
    transcript: str = ""
    phase: str | None = None


@_server("response.output_text.delta")
@dataclass(frozen=True, kw_only=True)
class TextDelta(_ResponsePartEvent):
    delta: str

    # Seed 002's C# client logged text deltas under "text".
    ALIASES: ClassVar[dict[str, str]] = {"text": "delta"}


@_server("response.output_text.done")
@dataclass(frozen=True, kw_only=True)
class TextDone(_ResponsePartEvent):
    text: str = ""


@_server("response.function_call_arguments.delta")
@dataclass(frozen=True, kw_only=True)
class FunctionCallArgumentsDelta(ServerEvent):
    response_id: str
    item_id: str
    call_id: str
    delta: str
    output_index: int = 0


@_server("response.function_call_arguments.done")
@dataclass(frozen=True, kw_only=True)
class FunctionCallArgumentsDone(ServerEvent):
    response_id: str
    item_id: str
    call_id: str
    arguments: str
    name: str | None = None
    output_index: int = 0


# ------------------------------------------------------------------- server events: other
@_server("rate_limits.updated")
@dataclass(frozen=True, kw_only=True)
class RateLimitsUpdated(ServerEvent):
    rate_limits: list[RateLimit]


@_server("error")
@dataclass(frozen=True, kw_only=True)
class ErrorEvent(ServerEvent):
    error: ErrorDetail

    @property
    def code(self) -> str | None:
        return self.error.code


@dataclass(frozen=True, kw_only=True)
class _OutputAudioBufferEvent(ServerEvent):
    """WebRTC/SIP only (reference section 6); parsed so seed 003 is understood."""

    response_id: str | None = None


@_server("output_audio_buffer.started")
@dataclass(frozen=True, kw_only=True)
class OutputAudioBufferStarted(_OutputAudioBufferEvent):
    pass


@_server("output_audio_buffer.stopped")
@dataclass(frozen=True, kw_only=True)
class OutputAudioBufferStopped(_OutputAudioBufferEvent):
    pass


@_server("output_audio_buffer.cleared")
@dataclass(frozen=True, kw_only=True)
class OutputAudioBufferCleared(_OutputAudioBufferEvent):
    pass



# Client events live in their own module; importing them here registers them and keeps
# ``events.X`` the one name for every event.
from .client_events import *  # noqa: E402,F403
from .client_events import __all__ as _client_names  # noqa: E402

__all__ = [name for name in globals() if name[0].isupper()] + list(_client_names)
