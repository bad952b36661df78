"""Typed shapes shared by events: items, content parts, responses, errors, rate limits.

Theory of operation: every model is a frozen dataclass in the *canonical* (GA) spelling.
``from_dict`` is lenient the way the protocol reference (section 10, pitfall 16) asks:
unknown fields are ignored, required fields (those without a default) must be present and
of their JSON type (else :class:`FieldError`), optional fields of the wrong type read as
absent, and nested models are converted by their annotations. ``to_dict`` drops ``None`` fields,
so what goes on the wire is exactly what was set.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self, get_args, get_origin

from ..errors import RemoteProtocolError


class FieldError(RemoteProtocolError):
    """A field has the wrong JSON type (a number where an object belongs, ...)."""

    kind = "field_type"


class MissingField(FieldError):
    """A required field is absent from the object at path ``where``."""

    kind = "missing_field"

    def __init__(self, where: str, name: str) -> None:
        super().__init__(f"{where}: missing required field {name!r}")
        self.where = where
        self.name = name


class Model:
    """Mixin giving dataclasses lenient parsing and compact serialisation."""

    #: Other spellings seen in the wild, alias -> field name.
    ALIASES: ClassVar[dict[str, str]] = {}

    @classmethod
    def _type_hints(cls) -> dict[str, Any]:
        hints = cls.__dict__.get("_hints_cache")
        if hints is None:
            hints = typing.get_type_hints(cls)
            cls._hints_cache = hints  # type: ignore[attr-defined]
        return hints

    @classmethod
    def from_dict(cls, data: Any, *, where: str = "") -> Self:
        where = where or cls.__name__
        if not isinstance(data, dict):
            raise FieldError(f"{where}: expected an object, got {type(data).__name__}")
        hints = cls._type_hints()
        kwargs: dict[str, Any] = {}
        for f in dataclasses.fields(cls):  # type: ignore[arg-type]
            if not f.init:
                continue
            name = f.name if f.name in data else next(
                (alias for alias, target in cls.ALIASES.items() if target == f.name and alias in data), None)
            required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
            if name is not None:
                try:
                    kwargs[f.name] = _convert(hints[f.name], data[name], f"{where}.{f.name}")
                except FieldError:
                    if required:
                        raise
                    # An optional field of the wrong type reads as absent (seed 002 logged
                    # status_details as ""): the event stays usable, with the default.
            elif required:
                raise MissingField(where, f.name)
        made = cls(**kwargs)
        made.check()
        return made

    def check(self) -> None:
        """Raise :class:`FieldError` when field values are unusable together (models override)."""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if value is None and not f.metadata.get("keep_none"):
                continue
            out[f.name] = _dump(value)
        return out


def _dump(value: Any) -> Any:
    if isinstance(value, Model):
        return value.to_dict()
    if isinstance(value, (list, tuple)):
        return [_dump(v) for v in value]
    if isinstance(value, dict):
        return {k: _dump(v) for k, v in value.items()}
    return value


def _convert(tp: Any, value: Any, where: str) -> Any:
    """Convert a JSON value to the annotated type; only models and lists of models change."""
    origin = get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None:
            return None
        options = [a for a in get_args(tp) if a is not type(None)]
        for option in options:
            if isinstance(option, type) and issubclass(option, Model) and isinstance(value, dict):
                return option.from_dict(value, where=where)
        return _convert(options[0], value, where) if len(options) == 1 else value
    if origin is list:
        (inner,) = get_args(tp) or (Any,)
        if not isinstance(value, list):
            raise FieldError(f"{where}: expected a list, got {type(value).__name__}")
        return [_convert(inner, v, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        tp = dict
    if isinstance(tp, type) and issubclass(tp, Model):
        return tp.from_dict(value, where=where)
    expected = _JSON_TYPES.get(tp)
    if expected is not None and not _is_json(value, tp):
        raise FieldError(f"{where}: expected {expected}, got {type(value).__name__}")
    return value


#: Annotation -> how an error names it; anything else (Any, unions of scalars) is not checked.
_JSON_TYPES = {str: "a string", int: "a number", float: "a number", bool: "true or false",
               dict: "an object", list: "a list"}


def _is_json(value: Any, tp: type) -> bool:
    if tp in (int, float):
        # bool is an int in Python but never a number on the wire; nan/inf never parse.
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    return isinstance(value, tp)


# Content part types. GA spells assistant parts output_text/output_audio; beta and the
# response.content_part.* events use text/audio. Both are accepted (reference section 1.2).
ASSISTANT_TEXT = ("output_text", "text")
ASSISTANT_AUDIO = ("output_audio", "audio")


@dataclass(frozen=True, kw_only=True)
class ContentPart(Model):
    type: str
    text: str | None = None
    transcript: str | None = None
    audio: str | None = None

    @property
    def spoken_or_written(self) -> str:
        return self.text or self.transcript or ""


@dataclass(frozen=True, kw_only=True)
class Item(Model):
    """A conversation item: a message, a function call or a function call's output."""

    type: str = "message"
    id: str | None = None
    object: str | None = None
    status: str | None = None
    role: str | None = None
    content: list[ContentPart] | None = None
    call_id: str | None = None
    name: str | None = None
    arguments: str | None = None
    output: str | None = None
    #: Reasoning models (gpt-realtime-2*) mark assistant messages "commentary" (a spoken
    #: preamble) or "final_answer" (reference section 1, "Preambles and phases").
    phase: str | None = None

    @classmethod
    def user_text(cls, text: str) -> Item:
        return cls(role="user", content=[ContentPart(type="input_text", text=text)])

    @classmethod
    def assistant_text(cls, text: str) -> Item:
        return cls(role="assistant", content=[ContentPart(type="output_text", text=text)])

    @classmethod
    def function_output(cls, call_id: str, output: str) -> Item:
        return cls(type="function_call_output", call_id=call_id, output=output)

    @property
    def text(self) -> str:
        """Everything said or written in this item, joined (transcripts for audio)."""
        return " ".join(p.spoken_or_written for p in self.content or () if p.spoken_or_written)

    @property
    def has_audio(self) -> bool:
        return any(p.type in ASSISTANT_AUDIO or p.type == "input_audio" for p in self.content or ())


@dataclass(frozen=True, kw_only=True)
class ErrorDetail(Model):
    type: str
    message: str
    # The real server sends these as null rather than leaving them out.
    code: str | None = field(default=None, metadata={"keep_none": True})
    param: str | None = field(default=None, metadata={"keep_none": True})
    event_id: str | None = field(default=None, metadata={"keep_none": True})


@dataclass(frozen=True, kw_only=True)
class RateLimit(Model):
    name: str
    limit: int | None = None
    remaining: int | None = None
    reset_seconds: float | None = None


@dataclass(frozen=True, kw_only=True)
class Response(Model):
    id: str | None = None
    object: str | None = None
    status: str | None = None
    status_details: dict[str, Any] | None = None
    output: list[Item] = field(default_factory=list)
    usage: dict[str, Any] | None = None
    conversation_id: str | None = None
    output_modalities: list[str] | None = None
    metadata: dict[str, Any] | None = None

    @property
    def reason(self) -> str | None:
        """Why a response ended early: turn_detected, client_cancelled, max_output_tokens…"""
        reason = (self.status_details or {}).get("reason")
        return reason if isinstance(reason, str) else None

    @property
    def error(self) -> dict[str, Any] | None:
        error = (self.status_details or {}).get("error")
        return error if isinstance(error, dict) else None

    @property
    def audio_tokens(self) -> int:
        details = (self.usage or {}).get("output_token_details")
        tokens = details.get("audio_tokens") if isinstance(details, dict) else None
        return int(tokens) if isinstance(tokens, int) and not isinstance(tokens, bool) else 0
