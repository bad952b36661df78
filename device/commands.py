"""What the control socket's commands do (``pivoice status | say | mute | talk | new_conversation``).

They reach the device only through :class:`device.controls.Controls` and a status function.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .controls import Controls

Command = Callable[[dict[str, Any]], Any]


def _flag(req: dict[str, Any], key: str) -> bool | None:
    """A JSON boolean, or None when absent; anything else is refused."""
    value = req.get(key)
    if value is not None and not isinstance(value, bool):
        raise ValueError(f"{key} must be true or false, not {value!r}"[:120])
    return value


def control_commands(controls: Controls, status: Callable[[], dict[str, Any]]) -> dict[str, Command]:
    def mute(req: dict[str, Any]) -> dict[str, Any]:
        try:
            muted = _flag(req, "muted")
        except ValueError as exc:
            return {"ok": False, "error": str(exc)}
        controls.set_muted(not controls.muted if muted is None else muted)
        return {"muted": controls.muted}

    def talk(req: dict[str, Any]) -> dict[str, Any]:
        try:
            on = _flag(req, "on")
        except ValueError as exc:
            return {"ok": False, "error": str(exc)}
        problem = controls.talk(True if on is None else on)
        if problem:
            return {"ok": False, "error": problem}
        return {"talking": controls.talking}

    def say(req: dict[str, Any]) -> dict[str, Any]:
        text = req.get("text")
        if not isinstance(text, str) or not text.strip():
            return {"ok": False, "error": "say needs {\"text\": \"...\"}"}
        problem = controls.say(text.strip()[:2000])
        if problem:
            return {"ok": False, "error": problem}
        return {"queued": True}

    def new_conversation(req: dict[str, Any]) -> dict[str, Any]:
        controls.new_conversation()
        return {}

    return {"status": lambda req: status(), "mute": mute, "talk": talk, "say": say,
            "new_conversation": new_conversation}
