"""The simulated server's session object: defaults, strict ``session.update`` validation, rendering.

The state is kept in the GA shape (reference section 2.3). A beta update is first mapped to
it; a field the dialect does not know is ``unknown_parameter`` and the whole update is
discarded, as the real server does (section 1.1, CAP 7d).
"""

from __future__ import annotations

import copy
from typing import Any

from ..realtime.dialect import Dialect, model_takes_reasoning
from ..realtime.session import DEFAULT_VOICE, PCM_RATE_HZ, REASONING_EFFORTS

DEFAULT_INSTRUCTIONS = ("You are a helpful, witty, and friendly voice assistant on a small device. "
                        "Keep answers short.")


class SimError(Exception):
    """An error event the simulator sends: code, message, param (reference section 8)."""

    def __init__(self, code: str | None, message: str, param: str | None = None,
                 type_: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.code, self.message, self.param, self.type = code, message, param, type_


#: What the server fills in for a turn_detection given in part (section 2.3, 5).
SERVER_VAD_DEFAULTS = {"type": "server_vad", "threshold": 0.5, "prefix_padding_ms": 300,
                       "silence_duration_ms": 200, "idle_timeout_ms": None,
                       "create_response": True, "interrupt_response": True}
SEMANTIC_VAD_DEFAULTS = {"type": "semantic_vad", "eagerness": "auto",
                         "create_response": True, "interrupt_response": True}
#: The effort a reasoning model's session starts with (the guides' recommended start).
DEFAULT_REASONING_EFFORT = "low"


def default_session(session_id: str, model: str, expires_at: int) -> dict[str, Any]:
    session = _base_session(session_id, model, expires_at)
    if model_takes_reasoning(model):
        session["reasoning"] = {"effort": DEFAULT_REASONING_EFFORT}
    return session


def _base_session(session_id: str, model: str, expires_at: int) -> dict[str, Any]:
    return {
        "type": "realtime", "object": "realtime.session", "id": session_id, "model": model,
        "output_modalities": ["audio"], "instructions": DEFAULT_INSTRUCTIONS, "tools": [],
        "tool_choice": "auto", "max_output_tokens": "inf", "tracing": None, "truncation": "auto",
        "prompt": None, "expires_at": expires_at, "include": None,
        "audio": {
            "input": {
                "format": {"type": "audio/pcm", "rate": PCM_RATE_HZ}, "transcription": None,
                "noise_reduction": None,
                "turn_detection": dict(SERVER_VAD_DEFAULTS),
            },
            "output": {"format": {"type": "audio/pcm", "rate": PCM_RATE_HZ}, "voice": DEFAULT_VOICE, "speed": 1},
        },
    }


_GA_TOP = {"type", "model", "output_modalities", "instructions", "audio", "tools", "tool_choice",
           "max_output_tokens", "tracing", "truncation", "prompt", "include", "reasoning",
           "parallel_tool_calls", "id", "object", "expires_at"}
_GA_INPUT = {"format", "transcription", "noise_reduction", "turn_detection"}
_GA_OUTPUT = {"format", "voice", "speed"}
_BETA_TOP = {"modalities", "instructions", "voice", "input_audio_format", "output_audio_format",
             "turn_detection", "input_audio_transcription", "input_audio_noise_reduction", "tools",
             "tool_choice", "temperature", "max_response_output_tokens", "speed", "tracing",
             "truncation", "prompt", "include", "model", "id", "object", "expires_at", "client_secret"}
_TURN_KEYS = {"type", "threshold", "prefix_padding_ms", "silence_duration_ms", "idle_timeout_ms",
              "create_response", "interrupt_response", "eagerness"}


def _unknown(keys: set[str], allowed: set[str], prefix: str) -> None:
    extra = sorted(keys - allowed)
    if extra:
        raise SimError("unknown_parameter", f"Unknown parameter: '{prefix}{extra[0]}'.", f"{prefix}{extra[0]}")


def _check_format(fmt: Any, param: str) -> None:
    if not isinstance(fmt, dict) or fmt.get("type") not in ("audio/pcm", "audio/pcmu", "audio/pcma"):
        raise SimError("invalid_value", f"Invalid value for '{param}.type'.", f"{param}.type")
    if fmt["type"] == "audio/pcm" and fmt.get("rate", PCM_RATE_HZ) < PCM_RATE_HZ:
        raise SimError("integer_below_min_value",
                       f"Invalid '{param}.rate': integer below minimum value. Expected a value >= 24000, "
                       f"but got {fmt['rate']} instead.", f"{param}.rate")


def _check_turn(turn: Any, param: str) -> dict[str, Any] | None:
    """Validate a turn_detection and return it whole, with the server's defaults filled in."""
    if turn is None:
        return None
    if not isinstance(turn, dict):
        raise SimError("invalid_type", f"Invalid type for '{param}'.", param)
    _unknown(set(turn), _TURN_KEYS, f"{param}.")
    kind = turn.get("type", "server_vad")
    if kind not in ("server_vad", "semantic_vad"):
        raise SimError("invalid_value", f"Invalid value for '{param}.type'.", f"{param}.type")
    defaults = SERVER_VAD_DEFAULTS if kind == "server_vad" else SEMANTIC_VAD_DEFAULTS
    threshold = turn.get("threshold", 0.5)
    if not isinstance(threshold, (int, float)) or not 0 <= threshold <= 1:
        raise SimError("decimal_above_max_value" if isinstance(threshold, (int, float)) and threshold > 1
                       else "invalid_value", f"Invalid '{param}.threshold'.", f"{param}.threshold")
    idle = turn.get("idle_timeout_ms")
    if idle is not None and (not isinstance(idle, int) or isinstance(idle, bool) or not 5000 <= idle <= 30000):
        code = "integer_below_min_value" if isinstance(idle, int) and idle < 5000 else "integer_above_max_value"
        bound = "Expected a value >= 5000" if code == "integer_below_min_value" else "Expected a value <= 30000"
        raise SimError(code, f"Invalid '{param}.idle_timeout_ms': {bound}, but got {idle!r} instead.",
                       f"{param}.idle_timeout_ms")
    return {**defaults, **turn, "type": kind}


def _check_reasoning(reasoning: Any, model: str) -> None:
    """``reasoning`` exists for the gpt-realtime-2 family only (section 1). The refusal copies
    what OpenAI says for reasoning.effort on a model without it [3P, Responses API]."""
    if not model_takes_reasoning(model):
        raise SimError("unsupported_parameter", "Unsupported parameter: 'session.reasoning.effort' is not "
                       "supported with this model.", "session.reasoning.effort")
    if not isinstance(reasoning, dict):
        raise SimError("invalid_type", "Invalid type for 'session.reasoning': expected an object.", "session.reasoning")
    _unknown(set(reasoning), {"effort"}, "session.reasoning.")
    effort = reasoning.get("effort")
    if effort is not None and effort not in REASONING_EFFORTS:
        supported = ", ".join(f"'{e}'" for e in REASONING_EFFORTS[:-1]) + f", and '{REASONING_EFFORTS[-1]}'"
        raise SimError("invalid_value", f"Invalid value: '{effort}'. Supported values are: {supported}.",
                       "session.reasoning.effort")


def _beta_to_ga(update: dict[str, Any]) -> dict[str, Any]:
    """Map a validated beta session update onto the GA shape (section 1.1)."""
    out: dict[str, Any] = {"type": "realtime"}
    audio_in: dict[str, Any] = {}
    audio_out: dict[str, Any] = {}
    for key, value in update.items():
        if key == "modalities":
            out["output_modalities"] = ["audio"] if "audio" in value else ["text"]
        elif key == "voice":
            audio_out["voice"] = value
        elif key == "speed":
            audio_out["speed"] = value
        elif key == "input_audio_format":
            audio_in["format"] = _BETA_FORMATS.get(value, {"type": value})
        elif key == "output_audio_format":
            audio_out["format"] = _BETA_FORMATS.get(value, {"type": value})
        elif key == "turn_detection":
            audio_in["turn_detection"] = value
        elif key == "input_audio_transcription":
            audio_in["transcription"] = value
        elif key == "input_audio_noise_reduction":
            audio_in["noise_reduction"] = value
        elif key == "max_response_output_tokens":
            out["max_output_tokens"] = value
        elif key in ("temperature", "client_secret", "id", "object", "expires_at"):
            continue
        else:
            out[key] = value
    if audio_in or audio_out:
        out["audio"] = {k: v for k, v in (("input", audio_in), ("output", audio_out)) if v}
    return out


_BETA_FORMATS = {"pcm16": {"type": "audio/pcm", "rate": PCM_RATE_HZ},
                 "g711_ulaw": {"type": "audio/pcmu"}, "g711_alaw": {"type": "audio/pcma"}}


def apply_update(current: dict[str, Any], update: Any, dialect: Dialect, *,
                 has_assistant_audio: bool) -> dict[str, Any]:
    """Return the new session after ``update``, or raise SimError and leave ``current`` alone."""
    if not isinstance(update, dict):
        raise SimError("invalid_type", "Invalid type for 'session': expected an object.", "session")
    if dialect is Dialect.GA:
        _unknown(set(update), _GA_TOP, "session.")
        if "type" not in update:
            raise SimError("missing_required_parameter", "Missing required parameter: 'session.type'.", "session.type")
        if update["type"] != "realtime":
            raise SimError("invalid_value", "Invalid value: 'session.type'. Supported values are: 'realtime'.",
                           "session.type")
        audio = update.get("audio") or {}
        _unknown(set(audio), {"input", "output"}, "session.audio.")
        _unknown(set(audio.get("input") or {}), _GA_INPUT, "session.audio.input.")
        _unknown(set(audio.get("output") or {}), _GA_OUTPUT, "session.audio.output.")
        ga = update
    else:
        _unknown(set(update), _BETA_TOP, "session.")
        ga = _beta_to_ga(update)
    audio = ga.get("audio") or {}
    audio_in, audio_out = audio.get("input") or {}, audio.get("output") or {}
    for side, block in (("input", audio_in), ("output", audio_out)):
        if "format" in block:
            _check_format(block["format"], f"session.audio.{side}.format")
    if "turn_detection" in audio_in:
        audio_in = dict(audio_in, turn_detection=_check_turn(audio_in["turn_detection"],
                                                             "session.audio.input.turn_detection"))
    if "reasoning" in ga:
        _check_reasoning(ga["reasoning"], current["model"])
    mods = ga.get("output_modalities")
    if mods is not None and (not isinstance(mods, list) or sorted(mods) not in (["audio"], ["text"])):
        raise SimError("invalid_value", "Invalid value for 'session.output_modalities': use ['audio'] or ['text'].",
                       "session.output_modalities")
    if "model" in ga and ga["model"] != current["model"]:
        raise SimError("invalid_value", "Cannot update a session's model.", "session.model")
    new_voice = audio_out.get("voice")
    if new_voice is not None and new_voice != current["audio"]["output"]["voice"] and has_assistant_audio:
        raise SimError("cannot_update_voice", "Cannot update a conversation's voice if assistant audio is present.",
                       "session.audio.output.voice")
    session = copy.deepcopy(current)
    for key, value in ga.items():
        if key in ("audio", "type", "id", "object", "expires_at", "model"):
            continue
        if key == "reasoning":  # only the fields given change
            value = {**(session.get("reasoning") or {}), **value}
        session[key] = value
    session["audio"]["input"].update(audio_in)
    session["audio"]["output"].update(audio_out)
    return session


def render_session(session: dict[str, Any], dialect: Dialect) -> dict[str, Any]:
    """The server's view of the session as ``dialect`` shows it."""
    if dialect is Dialect.GA:
        return session
    audio_in, audio_out = session["audio"]["input"], session["audio"]["output"]
    fmt_names = {"audio/pcm": "pcm16", "audio/pcmu": "g711_ulaw", "audio/pcma": "g711_alaw"}
    return {
        "id": session["id"], "object": "realtime.session", "model": session["model"],
        "expires_at": session["expires_at"],
        "modalities": ["audio", "text"] if "audio" in session["output_modalities"] else ["text"],
        "instructions": session["instructions"], "voice": audio_out["voice"],
        "turn_detection": audio_in["turn_detection"],
        "input_audio_format": fmt_names[audio_in["format"]["type"]],
        "output_audio_format": fmt_names[audio_out["format"]["type"]],
        "input_audio_transcription": audio_in["transcription"],
        "input_audio_noise_reduction": audio_in["noise_reduction"],
        "tool_choice": session["tool_choice"], "temperature": 0.8,
        "max_response_output_tokens": session["max_output_tokens"], "client_secret": None,
        "tools": session["tools"], "speed": audio_out.get("speed", 1),
    }
