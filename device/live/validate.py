"""Strict checks of client events, as the Live service applies them (reference sections 2, 3a, 5).

The session schema is strict: an unknown key anywhere in ``session.start.session`` is
``unknown_parameter`` with its dotted ``param``. Used by the server side of
:class:`~device.live.protocol.LiveProtocol` (the simulator); the device's own events are built
from typed models and never need it. Pure functions, no state.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from .models import (
    MAX_APPEND_TOKENS,
    MAX_INPUT_MESSAGES,
    MAX_INPUT_TOKENS,
    MAX_INSTRUCTIONS_TOKENS,
    VOICES,
    estimate_tokens,
)


class RequestError(Exception):
    """A client request the server refuses: ``error.code``, message and ``param`` (section 9)."""

    def __init__(self, code: str, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.param = code, message, param


_SESSION_KEYS = {"model", "instructions", "input", "audio", "delegation", "client", "store"}
_RESPONSES_KEYS = {"model", "instructions", "max_output_tokens", "parallel_tool_calls", "reasoning",
                   "service_tier", "text", "tool_choice", "tools"}
_FUNCTION_KEYS = {"type", "name", "description", "parameters", "strict"}
_HOSTED_TOOLS = {"web_search", "file_search", "code_interpreter", "shell", "image_generation", "mcp", "custom",
                 "namespace", "tool_search", "programmatic_tool_calling", "computer", "apply_patch"}
_FORMATS = {"audio/pcm": (16000, 24000), "audio/pcmu": (8000,), "audio/pcma": (8000,)}
_ROLE_PARTS = {"developer": {"input_text"}, "user": {"input_text"}, "assistant": {"output_text", "text"}}
_BARE_EVENTS = {"session.input_audio.mute", "session.input_audio.unmute", "response.create", "session.close"}
_APPENDS = {"session.instructions.append", "session.thinking.append", "session.commentary.append"}


def _unknown(obj: dict[str, Any], allowed: set[str], prefix: str) -> None:
    extra = sorted(set(obj) - allowed)
    if extra:
        raise RequestError("unknown_parameter", f"Unknown parameter: '{prefix}{extra[0]}'.", f"{prefix}{extra[0]}")


def _object(value: Any, param: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise RequestError("invalid_type", f"Invalid type for '{param}': expected an object.", param)
    return value


def _string(value: Any, param: str) -> str:
    if not isinstance(value, str):
        raise RequestError("invalid_type", f"Invalid type for '{param}': expected a string.", param)
    return value


def _missing(param: str) -> RequestError:
    return RequestError("missing_required_parameter", f"Missing required parameter: '{param}'.", param)


def check_client_event(data: dict[str, Any]) -> None:
    """Raise RequestError when a client event breaks the reference's rules."""
    if "event_id" in data:
        _string(data["event_id"], "event_id")
    name = data["type"]
    if name == "session.start":
        _unknown(data, {"type", "event_id", "session"}, "")
        check_session(data.get("session"))
    elif name == "session.update":
        _unknown(data, {"type", "event_id", "session"}, "")
        session = _object(data.get("session"), "session")
        _unknown(session, {"delegation"}, "session.")
        if "delegation" in session:
            check_delegation(session["delegation"], "session.delegation", update=True)
    elif name == "session.input_audio.append":
        _unknown(data, {"type", "event_id", "audio"}, "")
        check_audio(data.get("audio"))
    elif name in _APPENDS:
        _unknown(data, {"type", "event_id", "content", "delegation_id"}, "")
        content = _string(data.get("content"), "content")
        if not content.strip() or estimate_tokens(content) > MAX_APPEND_TOKENS:
            raise RequestError("invalid_value", f"'content' must be non-empty plain text of at most "
                               f"{MAX_APPEND_TOKENS} tokens.", "content")
        if "delegation_id" not in data:
            raise _missing("delegation_id")
        if data["delegation_id"] is not None:
            _string(data["delegation_id"], "delegation_id")
    elif name == "response.item.create":
        _unknown(data, {"type", "event_id", "item"}, "")
        item = _object(data.get("item"), "item")
        _string(item.get("type", "message"), "item.type")
    elif name in _BARE_EVENTS:
        _unknown(data, {"type", "event_id"}, "")


def check_audio(audio: Any) -> bytes:
    """The decoded bytes of an append's ``audio`` (base64, non-empty), or RequestError."""
    if not isinstance(audio, str):
        raise RequestError("invalid_audio", "'audio' must be a base64 string.", "audio")
    try:
        data = base64.b64decode(audio, validate=True)
    except (binascii.Error, ValueError):
        raise RequestError("invalid_audio", "'audio' is not valid base64.", "audio") from None
    if not data:
        raise RequestError("invalid_audio", "Audio must not be empty.", "audio")
    return data


def check_session(session: Any) -> None:
    """``session.start.session``: strict keys, required model, formats, voices, history limits."""
    session = _object(session, "session")
    _unknown(session, _SESSION_KEYS, "session.")
    if not session.get("model"):
        raise _missing("session.model")
    _string(session["model"], "session.model")
    instructions = session.get("instructions")
    if instructions is not None:
        tokens = estimate_tokens(_string(instructions, "session.instructions"))
        if tokens > MAX_INSTRUCTIONS_TOKENS:
            raise RequestError("string_above_max_length",
                               f"'session.instructions' exceeds {MAX_INSTRUCTIONS_TOKENS} tokens.",
                               "session.instructions")
    if session.get("input") is not None:
        check_input(session["input"])
    if session.get("audio") is not None:
        check_audio_config(session["audio"])
    if session.get("delegation") is not None:
        check_delegation(session["delegation"], "session.delegation", update=False)
    if session.get("store") is not None and not isinstance(session["store"], bool):
        raise RequestError("invalid_type", "Invalid type for 'session.store': expected a boolean.", "session.store")


def check_audio_config(audio: Any) -> None:
    audio = _object(audio, "session.audio")
    _unknown(audio, {"format", "output"}, "session.audio.")
    if audio.get("format") is not None:
        fmt = _object(audio["format"], "session.audio.format")
        _unknown(fmt, {"type", "rate"}, "session.audio.format.")
        kind = fmt.get("type")
        rates = _FORMATS.get(kind) if isinstance(kind, str) else None  # a list would not even hash
        if rates is None:
            raise RequestError("invalid_value", "Invalid value for 'session.audio.format.type'. Supported values "
                               "are: 'audio/pcm', 'audio/pcmu', and 'audio/pcma'.", "session.audio.format.type")
        if fmt.get("rate", rates[-1]) not in rates:
            raise RequestError("invalid_value", f"Invalid value for 'session.audio.format.rate': {fmt['type']} "
                               f"supports {', '.join(map(str, rates))}.", "session.audio.format.rate")
    if audio.get("output") is not None:
        output = _object(audio["output"], "session.audio.output")
        _unknown(output, {"voice"}, "session.audio.output.")
        voice = output.get("voice")
        if isinstance(voice, dict):
            _unknown(voice, {"id"}, "session.audio.output.voice.")
            _string(voice.get("id"), "session.audio.output.voice.id")
        elif voice is not None and voice not in VOICES:
            raise RequestError("invalid_value", f"Invalid value: '{voice}'. Supported values are: "
                               + ", ".join(f"'{v}'" for v in sorted(VOICES)) + ".", "session.audio.output.voice")


def check_input(history: Any) -> None:
    if not isinstance(history, list):
        raise RequestError("invalid_type", "Invalid type for 'session.input': expected an array.", "session.input")
    if len(history) > MAX_INPUT_MESSAGES:
        raise RequestError("array_above_max_length", f"'session.input' holds {len(history)} messages; at most "
                           f"{MAX_INPUT_MESSAGES} are allowed.", "session.input")
    tokens = 0
    for n, message in enumerate(history):
        where = f"session.input[{n}]"
        message = _object(message, where)
        _unknown(message, {"type", "role", "content", "id", "status"}, f"{where}.")
        if message.get("type", "message") != "message":
            raise RequestError("invalid_value", f"Invalid value for '{where}.type': only 'message'.", f"{where}.type")
        role = message.get("role")
        parts = _ROLE_PARTS.get(role) if isinstance(role, str) else None  # a list would not even hash
        if parts is None:
            raise RequestError("invalid_value", f"Invalid value for '{where}.role'. Supported values are: "
                               "'developer', 'user', and 'assistant'.", f"{where}.role")
        content = message.get("content")
        if not isinstance(content, list) or len(content) != 1:
            raise RequestError("invalid_value", f"'{where}.content' must hold exactly one text part.",
                               f"{where}.content")
        part = _object(content[0], f"{where}.content[0]")
        _unknown(part, {"type", "text"}, f"{where}.content[0].")
        if part.get("type") not in parts:
            raise RequestError("invalid_value", f"Invalid value for '{where}.content[0].type' for role {role}.",
                               f"{where}.content[0].type")
        tokens += estimate_tokens(_string(part.get("text"), f"{where}.content[0].text"))
    if tokens > MAX_INPUT_TOKENS:
        raise RequestError("input_too_long", f"'session.input' renders to about {tokens} tokens; at most "
                           f"{MAX_INPUT_TOKENS} are allowed.", "session.input")


def check_delegation(delegation: Any, param: str, *, update: bool) -> None:
    delegation = _object(delegation, param)
    _unknown(delegation, {"type", "responses"}, f"{param}.")
    kind = delegation.get("type")
    if kind not in ("client", "responses"):
        raise RequestError("invalid_value", f"Invalid value for '{param}.type'. Supported values are: "
                           "'client' and 'responses'.", f"{param}.type")
    if kind == "client":
        _unknown(delegation, {"type"}, f"{param}.")
        return
    responses = delegation.get("responses")
    if responses is None:
        if update:
            return
        raise _missing(f"{param}.responses")
    responses = _object(responses, f"{param}.responses")
    _unknown(responses, _RESPONSES_KEYS, f"{param}.responses.")
    if not update and not responses.get("model"):
        raise _missing(f"{param}.responses.model")
    for n, tool in enumerate(responses.get("tools") or ()):
        check_tool(tool, f"{param}.responses.tools[{n}]")


def check_tool(tool: Any, where: str) -> None:
    tool = _object(tool, where)
    kind = tool.get("type")
    if kind == "function":
        _unknown(tool, _FUNCTION_KEYS, f"{where}.")
        if not tool.get("name"):
            raise _missing(f"{where}.name")
        _string(tool["name"], f"{where}.name")
        if tool.get("parameters") is not None:
            _object(tool["parameters"], f"{where}.parameters")
    elif not isinstance(kind, str) or kind not in _HOSTED_TOOLS:   # a list here is not hashable
        raise RequestError("invalid_value", f"Invalid value for '{where}.type': {kind!r}.", f"{where}.type")
