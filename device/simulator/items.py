"""Checks on the conversation items a client creates (reference sections 2.1, 2.3, 7).

Pure functions over dicts in the GA shape: they raise :class:`SimError` with the codes and
messages the real server uses, and change nothing.
"""

from __future__ import annotations

from typing import Any

from .config import SimError

_ALLOWED_PARTS = {"user": {"input_text", "input_audio", "input_image"}, "system": {"input_text"},
                  "assistant": {"output_text", "text"}}


def check_new_item(item: dict[str, Any], items: list[dict[str, Any]]) -> None:
    """Refuse an item ``conversation.item.create`` may not add to ``items``."""
    kind = item.get("type")
    if kind == "function_call_output":
        if not any(i.get("type") == "function_call" and i.get("call_id") == item.get("call_id") for i in items):
            raise SimError("invalid_value", f"No tool call found for function call output with call_id "
                           f"'{item.get('call_id')}'.", "item.call_id")
        if item.get("output") is None:
            raise SimError("missing_required_parameter", "Missing required parameter: 'item.output'.", "item.output")
        return
    if kind != "message":
        raise SimError("invalid_value", f"Invalid value: '{kind}'. Supported values are: 'message', "
                       "'function_call', and 'function_call_output'.", "item.type")
    allowed = _ALLOWED_PARTS.get(item.get("role") or "")
    if allowed is None:
        raise SimError("invalid_value", f"Invalid value: '{item.get('role')}'. Supported values are: "
                       "'user', 'assistant', and 'system'.", "item.role")
    for n, part in enumerate(item.get("content") or ()):
        if part.get("type") not in allowed:
            raise SimError("invalid_value", f"Invalid value: '{part.get('type')}'. Supported values are: "
                           + ", ".join(f"'{a}'" for a in sorted(allowed)) + ".", f"item.content[{n}].type")
        if part["type"] in ("input_text", "output_text", "text") and part.get("text") is None:
            raise SimError("missing_required_parameter",
                           f"Missing required parameter: 'item.content[{n}].text'.", f"item.content[{n}].text")


def insert_index(items: list[dict[str, Any]], previous_item_id: str | None) -> int:
    """Where an item created after ``previous_item_id`` goes (None: at the end; "root": first)."""
    if previous_item_id is None:
        return len(items)
    if previous_item_id == "root":
        return 0
    index = next((n + 1 for n, i in enumerate(items) if i["id"] == previous_item_id), None)
    if index is None:
        raise SimError("invalid_value", f"Error adding item: the previous item with id '{previous_item_id}' "
                       "does not exist.", "previous_item_id")
    return index


def truncate_item(item: dict[str, Any], audio: bytearray | None, audio_end_ms: int, bytes_per_ms: int) -> None:
    """Cut an assistant audio item at ``audio_end_ms`` and drop the words not heard."""
    if item.get("role") != "assistant" or audio is None:
        raise SimError("unsupported_content_type", "Only model output audio messages can be truncated")
    have_ms = len(audio) // bytes_per_ms
    if audio_end_ms > have_ms:
        raise SimError("invalid_value", f"Audio content of {have_ms}ms is already shorter than "
                       f"{audio_end_ms}ms", "audio_end_ms")
    del audio[audio_end_ms * bytes_per_ms:]
    for part in item.get("content") or ():
        if part.get("transcript"):
            words = part["transcript"].split()
            keep = round(len(words) * audio_end_ms / max(have_ms, 1))
            part["transcript"] = " ".join(words[:keep])
