"""The GA and beta dialects of the Realtime API, mapped in this one place.

GA is canonical: every event model and every settings object in pivoice uses GA names.
Beta (switched off by OpenAI on 2026-05-12, still spoken by older Azure deployments and
useful for regression) differs in event names (reference section 1.2), in session fields
(section 1.1) and in assistant content part types. This module converts in both
directions, for the client and for the simulator.
"""

from __future__ import annotations

import enum
import math
import re
from typing import Any, TypeGuard

from ..errors import ConfigError
from .session import PCM_RATE_HZ, SessionInfo, SessionSettings, TurnDetection


class Dialect(enum.StrEnum):
    GA = "ga"
    BETA = "beta"

    @classmethod
    def parse(cls, value: str, *, key: str = "[realtime] dialect") -> Dialect:
        try:
            return cls(value.lower())
        except ValueError:
            raise ConfigError(f"{key} = {value!r} is not a dialect; use \"ga\" or \"beta\"") from None


#: Beta server event name -> GA name.
_BETA_TO_GA = {
    "response.audio.delta": "response.output_audio.delta",
    "response.audio.done": "response.output_audio.done",
    "response.audio_transcript.delta": "response.output_audio_transcript.delta",
    "response.audio_transcript.done": "response.output_audio_transcript.done",
    "response.text.delta": "response.output_text.delta",
    "response.text.done": "response.output_text.done",
    "conversation.item.created": "conversation.item.added",
}
_GA_TO_BETA = {ga: beta for beta, ga in _BETA_TO_GA.items()}
#: GA still lists the beta name in its union (section 1.2); read it as "added".
_GA_ALIASES = {"conversation.item.created": "conversation.item.added"}
#: GA events a beta server never sent.
_GA_ONLY_SERVER_EVENTS = frozenset({
    "conversation.item.done", "input_audio_buffer.timeout_triggered",
})
#: Assistant content part types, GA -> beta.
_PART_GA_TO_BETA = {"output_text": "text", "output_audio": "audio"}


def canonical_event_type(wire_type: str, dialect: Dialect) -> str:
    """The GA name of a server event received in ``dialect``."""
    table = _BETA_TO_GA if dialect is Dialect.BETA else _GA_ALIASES
    return table.get(wire_type, wire_type)


def wire_event_type(canonical: str, dialect: Dialect) -> str | None:
    """The name a server in ``dialect`` uses for a GA event, or None if it never sends it."""
    if dialect is Dialect.BETA:
        if canonical in _GA_ONLY_SERVER_EVENTS:
            return None
        return _GA_TO_BETA.get(canonical, canonical)
    return canonical


def render_item(item: dict[str, Any], dialect: Dialect) -> dict[str, Any]:
    """An item dict with assistant content part types spelled for ``dialect``."""
    if dialect is Dialect.GA or not item.get("content"):
        return item
    content = [dict(p, type=_PART_GA_TO_BETA.get(p.get("type"), p.get("type"))) for p in item["content"]]
    return dict(item, content=content)


def render_event(data: dict[str, Any], dialect: Dialect) -> dict[str, Any]:
    """Spell the items inside an event dict (item, response.output) for ``dialect``."""
    if dialect is Dialect.GA:
        return data
    out = dict(data)
    if isinstance(out.get("item"), dict):
        out["item"] = render_item(out["item"], dialect)
    response = out.get("response")
    if isinstance(response, dict):
        response = dict(response)
        if "output" in response:
            response["output"] = [render_item(i, dialect) for i in response["output"]]
        if "output_modalities" in response:
            mods = response.pop("output_modalities")
            response["modalities"] = ["text", "audio"] if "audio" in mods else ["text"]
        out["response"] = response
    return out


# ------------------------------------------------------------------------------ sessions
def _audio_format(dialect: Dialect) -> Any:
    return {"type": "audio/pcm", "rate": PCM_RATE_HZ} if dialect is Dialect.GA else "pcm16"


#: Model ids that take ``session.reasoning`` (section 1: the gpt-realtime-2 family, its
#: dated snapshots and the 2.x previews). Not ``gpt-realtime-2025-08-28``: that is gpt-realtime.
REASONING_MODELS = re.compile(r"gpt-realtime-2(\.\d+)?(-|$)")


def model_takes_reasoning(model: str | None) -> bool:
    """Whether ``model`` accepts ``session.reasoning``; other models refuse the whole update."""
    return bool(model and REASONING_MODELS.match(model))


def render_session(settings: SessionSettings, dialect: Dialect, *, model: str | None = None) -> dict[str, Any]:
    """The ``session`` object of a ``session.update`` for ``dialect`` (section 1.1).

    ``model`` is the session's model: ``reasoning`` is sent only when it takes it (GA only),
    since a model that does not rejects the whole update."""
    turn = settings.turn_detection.to_dict() if settings.turn_detection else None
    transcription = {"model": settings.transcription_model} if settings.transcription_model else None
    noise = {"type": settings.noise_reduction} if settings.noise_reduction else None
    tools = [t.to_dict() for t in settings.tools]
    if dialect is Dialect.GA:
        output: dict[str, Any] = {"format": _audio_format(dialect), "voice": settings.voice}
        if settings.speed is not None:
            output["speed"] = settings.speed
        session: dict[str, Any] = {
            "type": "realtime",
            "output_modalities": list(settings.output_modalities),
            "audio": {
                "input": {"format": _audio_format(dialect), "turn_detection": turn,
                          "transcription": transcription, "noise_reduction": noise},
                "output": output,
            },
            "tools": tools,
            "tool_choice": settings.tool_choice,
        }
        if settings.max_output_tokens is not None:
            session["max_output_tokens"] = settings.max_output_tokens
        if settings.reasoning_effort and model_takes_reasoning(model):
            session["reasoning"] = {"effort": settings.reasoning_effort}
    else:
        session = {
            # Beta has no audio-only mode: audio always came with text (section 1.1).
            "modalities": ["text", "audio"] if "audio" in settings.output_modalities else ["text"],
            "voice": settings.voice,
            "input_audio_format": "pcm16",
            "output_audio_format": "pcm16",
            "turn_detection": turn,
            "input_audio_transcription": transcription,
            "input_audio_noise_reduction": noise,
            "tools": tools,
            "tool_choice": settings.tool_choice,
        }
        if settings.max_output_tokens is not None:
            session["max_response_output_tokens"] = settings.max_output_tokens
        if settings.speed is not None:
            session["speed"] = settings.speed
    if settings.instructions is not None:
        session["instructions"] = settings.instructions
    return session


def parse_session(session: dict[str, Any], dialect: Dialect) -> SessionInfo:
    """Read the server's session object (either dialect's shape is accepted).

    Never raises: a field of the wrong type reads as absent (the session still works, only
    the device's view of it is less complete).
    """
    session = _obj(session)
    audio = _obj(session.get("audio")) if isinstance(session.get("audio"), dict) else None
    if audio is not None:
        audio_in, audio_out = _obj(audio.get("input")), _obj(audio.get("output"))
        turn, voice = audio_in.get("turn_detection"), audio_out.get("voice")
        rate = _obj(audio_in.get("format")).get("rate")
        modalities = _strings(session.get("output_modalities")) or ["audio"]
    else:
        turn, voice = session.get("turn_detection"), session.get("voice")
        rate = PCM_RATE_HZ if session.get("input_audio_format", "pcm16") == "pcm16" else 8000
        beta_modalities = _strings(session.get("modalities")) or ["text", "audio"]
        modalities = ["audio"] if "audio" in beta_modalities else ["text"]
    if isinstance(voice, dict):
        voice = voice.get("id")
    expires = session.get("expires_at")
    return SessionInfo(
        id=_str(session.get("id")),
        model=_str(session.get("model")),
        expires_at=float(expires) if _number(expires) and expires > 0 else None,
        instructions=_str(session.get("instructions")),
        voice=_str(voice),
        output_modalities=tuple(modalities),
        turn_detection=_turn_detection(turn),
        tools=tuple(t["name"] for t in _list(session.get("tools")) if isinstance(t, dict) and _str(t.get("name"))),
        input_rate_hz=int(rate) if _number(rate) and 0 < rate < 1_000_000 else None,
        raw=session,
    )


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _strings(value: Any) -> list[str]:
    return [v for v in _list(value) if isinstance(v, str)]


def _number(value: Any) -> TypeGuard[float]:
    """A finite JSON number (int or float, never a bool)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _turn_detection(turn: Any) -> TurnDetection | None:
    """The server's turn detection; fields of the wrong type keep their defaults."""
    if not isinstance(turn, dict) or not turn:
        return None
    defaults = TurnDetection()
    known: dict[str, Any] = {}
    for name in TurnDetection.__dataclass_fields__:
        value, default = turn.get(name), getattr(defaults, name)
        if value is None:
            continue
        if isinstance(default, (bool, str)):
            fits = isinstance(value, type(default))  # a flag stays a flag, a name a name
        else:
            fits = _number(value)
        if fits:
            known[name] = value
    return TurnDetection(**known)


def render_response_params(dialect: Dialect, *, instructions: str | None = None,
                           output_modalities: tuple[str, ...] | None = None,
                           conversation: str | None = None,
                           metadata: dict[str, str] | None = None) -> dict[str, Any] | None:
    """The optional ``response`` object of ``response.create``."""
    params: dict[str, Any] = {}
    if instructions is not None:
        params["instructions"] = instructions
    if output_modalities is not None:
        if dialect is Dialect.GA:
            params["output_modalities"] = list(output_modalities)
        else:
            params["modalities"] = ["text", "audio"] if "audio" in output_modalities else ["text"]
    if conversation is not None:
        params["conversation"] = conversation
    if metadata:
        params["metadata"] = dict(metadata)
    return params or None
