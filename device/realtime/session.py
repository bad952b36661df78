"""Typed session settings (what the device asks for) and session info (what the server says).

Both are dialect-neutral; :mod:`device.realtime.dialect` renders and parses them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: Default voice for a new session; immutable once the assistant has spoken (section 2.1).
DEFAULT_VOICE = "marin"
PCM_RATE_HZ = 24000
#: ``session.reasoning.effort`` values of the reasoning models (reference section 1.1).
REASONING_EFFORTS = ("minimal", "low", "medium", "high", "xhigh")


@dataclass(frozen=True, kw_only=True)
class TurnDetection:
    """Server-side turn detection (reference section 5); ``None`` in settings means manual."""

    type: str = "server_vad"
    threshold: float = 0.5
    prefix_padding_ms: int = 300
    silence_duration_ms: int = 500
    create_response: bool = True
    interrupt_response: bool = True
    idle_timeout_ms: int | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type}
        if self.type == "server_vad":
            out.update(threshold=self.threshold, prefix_padding_ms=self.prefix_padding_ms,
                       silence_duration_ms=self.silence_duration_ms)
            if self.idle_timeout_ms is not None:
                out["idle_timeout_ms"] = self.idle_timeout_ms
        out.update(create_response=self.create_response, interrupt_response=self.interrupt_response)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> TurnDetection | None:
        if not data:
            return None
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data and data[k] is not None}
        return cls(**known)


@dataclass(frozen=True, kw_only=True)
class Tool:
    """A function the model may call: name, description and a JSON Schema for arguments."""

    name: str
    description: str = ""
    parameters: dict[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})

    def to_dict(self) -> dict[str, Any]:
        return {"type": "function", "name": self.name, "description": self.description,
                "parameters": self.parameters}


@dataclass(frozen=True, kw_only=True)
class SessionSettings:
    """What the device configures with ``session.update`` (voice-device subset, section 1.1)."""

    instructions: str | None = None
    voice: str = DEFAULT_VOICE
    output_modalities: tuple[str, ...] = ("audio",)
    turn_detection: TurnDetection | None = field(default_factory=TurnDetection)
    transcription_model: str | None = None
    noise_reduction: str | None = "far_field"
    tools: tuple[Tool, ...] = ()
    tool_choice: str = "auto"
    max_output_tokens: int | str | None = None
    speed: float | None = None
    #: One of REASONING_EFFORTS; rendered only for models that take it
    #: (:func:`device.realtime.dialect.model_takes_reasoning`), else left out.
    reasoning_effort: str | None = None


@dataclass(frozen=True, kw_only=True)
class SessionInfo:
    """The server's view of the session, from ``session.created`` / ``session.updated``."""

    id: str | None
    model: str | None
    expires_at: float | None
    instructions: str | None
    voice: str | None
    output_modalities: tuple[str, ...]
    turn_detection: TurnDetection | None
    tools: tuple[str, ...]
    input_rate_hz: int | None
    raw: dict[str, Any] = field(repr=False, default_factory=dict)
