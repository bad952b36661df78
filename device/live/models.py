"""Typed shapes of the GPT-Live protocol: session configuration, history, delegation, usage, errors.

Theory of operation: the same lenient :class:`~device.realtime.models.Model` mixin as the
Realtime core (unknown server fields ignored, required fields enforced, ``None`` dropped on
the way out). What the *device* sends is checked here before it leaves (reference section 2:
the server's session schema is strict, so a wrong key would cost a whole session start);
what the *simulator* accepts is checked, just as strictly, in :mod:`device.live.validate`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import LocalProtocolError, RemoteProtocolError
from ..realtime.models import Model

#: The built-in voices (reference section 2, SDK lists); a custom voice is ``{"id": ...}``.
VOICES = frozenset({
    "alloy", "ash", "aube", "ballad", "beacon", "bossa", "brise", "cedar", "cinder", "coral", "delta", "echo",
    "flitz", "gleam", "harema", "juni", "marin", "meridian", "nira", "noeul", "nuri", "quartz", "ripple", "sage",
    "shimmer", "shitan", "sillage", "stone", "tempo", "verse", "vesper", "willow",
})
DEFAULT_VOICE = "marin"
MODELS = ("gpt-live-1", "gpt-live-1.1")
DEFAULT_MODEL = "gpt-live-1"
#: ``session.input`` limits (reference section 2).
MAX_INPUT_MESSAGES = 128
MAX_INPUT_TOKENS = 8192
#: ``session.*.append`` content limit, in tokens (reference section 3a).
MAX_APPEND_TOKENS = 500
MAX_INSTRUCTIONS_TOKENS = 16384
CLOSE_REASONS = ("close_requested", "expired", "content", "remote_hangup", "connection_lost")


def _number(value: Any, where: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RemoteProtocolError(f"{where}: expected a number, got {type(value).__name__}")


def estimate_tokens(text: str) -> int:
    """A conservative token count (about four characters a token, at least one per word).

    The server counts "rendered tokens" with its own tokenizer (NOT FOUND which); the device
    only needs to stay under the limits, so it over-counts rather than under-counts."""
    return max(len(text) // 4 + 1, len(text.split())) if text else 0


@dataclass(frozen=True, kw_only=True)
class AudioFormat(Model):
    """``audio/pcm`` at 16000 or 24000 Hz, or ``audio/pcmu`` / ``audio/pcma`` at 8000 Hz (section 5)."""

    type: str = "audio/pcm"
    rate: int = 24000

    def check(self) -> None:
        allowed = {"audio/pcm": (16000, 24000), "audio/pcmu": (8000,), "audio/pcma": (8000,)}
        if self.rate not in allowed.get(self.type, ()):
            raise LocalProtocolError(f"audio format {self.type} at {self.rate} Hz is not offered by GPT-Live")

    @property
    def bytes_per_ms(self) -> int:
        """Bytes of one millisecond of mono audio in this format."""
        width = 2 if self.type == "audio/pcm" else 1
        return width * self.rate // 1000


@dataclass(frozen=True, kw_only=True)
class AudioOutput(Model):
    voice: str | dict[str, Any] | None = None


@dataclass(frozen=True, kw_only=True)
class AudioConfig(Model):
    format: AudioFormat | None = None
    output: AudioOutput | None = None


@dataclass(frozen=True, kw_only=True)
class TextPart(Model):
    type: str
    text: str


@dataclass(frozen=True, kw_only=True)
class InputMessage(Model):
    """One ``session.input`` history message: exactly one text part (section 2)."""

    role: str
    content: list[TextPart]
    type: str | None = "message"
    id: str | None = None
    status: str | None = None

    @classmethod
    def text(cls, role: str, text: str) -> InputMessage:
        kind = "output_text" if role == "assistant" else "input_text"
        return cls(role=role, content=[TextPart(type=kind, text=text)])

    @property
    def plain(self) -> str:
        return " ".join(p.text for p in self.content)


@dataclass(frozen=True, kw_only=True)
class FunctionTool(Model):
    """A ``function`` tool of the Responses delegation; its calls come back to the device."""

    name: str
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None
    type: str = "function"


@dataclass(frozen=True, kw_only=True)
class ResponsesConfig(Model):
    """``delegation.responses`` (ResponsesDelegationConfig, section 2); ``model`` required at start."""

    model: str | None = None
    instructions: str | None = None
    max_output_tokens: int | None = None
    parallel_tool_calls: bool | None = None
    reasoning: dict[str, Any] | None = None
    service_tier: str | None = None
    text: dict[str, Any] | None = None
    tool_choice: str | dict[str, Any] | None = None
    tools: list[dict[str, Any]] | None = None


@dataclass(frozen=True, kw_only=True)
class Delegation(Model):
    """``{"type": "client"}`` or ``{"type": "responses", "responses": {...}}`` (section 8)."""

    type: str = "client"
    responses: ResponsesConfig | None = None

    @classmethod
    def responses_with(cls, model: str, tools: list[FunctionTool] | tuple[FunctionTool, ...] = (),
                       instructions: str | None = None) -> Delegation:
        return cls(type="responses", responses=ResponsesConfig(
            model=model, instructions=instructions, tools=[t.to_dict() for t in tools] or None))


@dataclass(frozen=True, kw_only=True)
class SessionConfig(Model):
    """What ``session.start`` asks for. Build it with :meth:`build`, which checks the limits."""

    model: str
    instructions: str | None = None
    input: list[InputMessage] | None = None
    audio: AudioConfig | None = None
    delegation: Delegation | None = None
    store: bool | None = None

    @classmethod
    def build(cls, *, model: str = DEFAULT_MODEL, instructions: str | None = None,
              voice: str | dict[str, Any] | None = None, audio_format: AudioFormat | None = None,
              history: list[InputMessage] | tuple[InputMessage, ...] = (),
              delegation: Delegation | None = None, store: bool | None = None) -> SessionConfig:
        if not model:
            raise LocalProtocolError("session.start needs a model")
        if isinstance(voice, str) and voice not in VOICES:
            raise LocalProtocolError(f"{voice!r} is not a GPT-Live voice; use one of {sorted(VOICES)} "
                                     "or a custom voice {'id': ...}")
        if instructions and estimate_tokens(instructions) > MAX_INSTRUCTIONS_TOKENS:
            raise LocalProtocolError(f"instructions exceed {MAX_INSTRUCTIONS_TOKENS} tokens")
        check_history(history)
        if audio_format:
            audio_format.check()
        audio = AudioConfig(format=audio_format or AudioFormat(),
                            output=AudioOutput(voice=voice) if voice else None)
        return cls(model=model, instructions=instructions or None, input=list(history) or None,
                   audio=audio, delegation=delegation, store=store)


def check_history(history: list[InputMessage] | tuple[InputMessage, ...]) -> None:
    """Raise LocalProtocolError when ``history`` breaks the ``session.input`` limits."""
    if len(history) > MAX_INPUT_MESSAGES:
        raise LocalProtocolError(f"session.input holds {len(history)} messages; the limit is {MAX_INPUT_MESSAGES}")
    tokens = sum(estimate_tokens(m.plain) for m in history)
    if tokens > MAX_INPUT_TOKENS:
        raise LocalProtocolError(f"session.input holds about {tokens} tokens; the limit is {MAX_INPUT_TOKENS}")
    for n, message in enumerate(history):
        if len(message.content) != 1:
            raise LocalProtocolError(f"session.input[{n}] must have exactly one text part")


def fit_history(history: list[InputMessage], *, max_messages: int = MAX_INPUT_MESSAGES,
                max_tokens: int = MAX_INPUT_TOKENS) -> list[InputMessage]:
    """The newest messages of ``history`` that fit the ``session.input`` limits, oldest first."""
    kept: list[InputMessage] = []
    tokens = 0
    for message in reversed(history):
        cost = estimate_tokens(message.plain)
        if len(kept) >= max_messages or tokens + cost > max_tokens:
            break
        kept.append(message)
        tokens += cost
    return kept[::-1]


@dataclass(frozen=True, kw_only=True)
class SessionResource(Model):
    """The resolved session in ``session.started`` / ``session.updated`` / ``session.closed``."""

    id: str
    model: str | None = None
    expires_at: float | None = None
    status: str | None = None
    instructions: str | None = None
    input: list[InputMessage] | None = None
    audio: AudioConfig | None = None
    delegation: Delegation | None = None
    client: dict[str, Any] | None = None
    store: bool | None = None

    def __post_init__(self) -> None:
        if self.expires_at is not None:
            _number(self.expires_at, "session.expires_at")

    @property
    def voice(self) -> str | None:
        voice = self.audio.output.voice if self.audio and self.audio.output else None
        return voice.get("id") if isinstance(voice, dict) else voice

    @property
    def audio_format(self) -> AudioFormat:
        return (self.audio.format if self.audio and self.audio.format else None) or AudioFormat()


@dataclass(frozen=True, kw_only=True)
class Usage(Model):
    """Connected seconds so far: cumulative, never to be summed (section 3b)."""

    seconds: float

    def __post_init__(self) -> None:
        _number(self.seconds, "usage.seconds")


@dataclass(frozen=True, kw_only=True)
class ContextWindow(Model):
    usage_ratio: float | None = None

    def __post_init__(self) -> None:
        if self.usage_ratio is not None:
            _number(self.usage_ratio, "context_window.usage_ratio")


@dataclass(frozen=True, kw_only=True)
class DelegationInfo(Model):
    """``session.delegation.created``'s metadata: no task text (section 8)."""

    id: str
    target: str
    type: str = "delegation"
    response_id: str | None = None


@dataclass(frozen=True, kw_only=True)
class LiveErrorDetail(Model):
    type: str
    message: str
    code: str | None = None
    param: str | None = None
    client_event_id: str | None = None


@dataclass(frozen=True, kw_only=True)
class FunctionCall(Model):
    """A ``function_call`` item of a delegated Responses response (section 8)."""

    call_id: str
    name: str
    arguments: str = "{}"
    id: str | None = None
    type: str = "function_call"
    status: str | None = None


@dataclass(frozen=True, kw_only=True)
class FunctionCallOutput(Model):
    call_id: str
    output: str
    type: str = "function_call_output"


def input_text_message(text: str) -> dict[str, Any]:
    """A Responses user message item for ``response.item.create``."""
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}

