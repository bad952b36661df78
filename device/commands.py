"""What the control socket's commands do (``pivoice status | say | mute | talk | new_conversation``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .audio.turns import TurnMode

if TYPE_CHECKING:
    from .app import App


def control_commands(app: App) -> dict[str, Callable[[dict], Any]]:
    def mute(req: dict) -> dict:
        muted = req.get("muted")
        if muted is not None and not isinstance(muted, bool):
            return {"ok": False, "error": "mute takes {\"muted\": true} or {\"muted\": false} (or nothing, to toggle)"}
        app.set_muted(not app.turns.muted if muted is None else bool(muted))
        return {"muted": app.turns.muted}

    def talk(req: dict) -> dict:
        if app.pipeline is None:
            return {"ok": False, "error": "the microphone is not open yet"}
        if app.turns.mode is not TurnMode.PUSH_TO_TALK:
            return {"ok": False, "error": f"talk is for [turns] mode = \"push_to_talk\"; in {app.turns.mode} "
                    "mode just speak"}
        on = req.get("on", True)
        if not isinstance(on, bool):
            return {"ok": False, "error": "talk takes {\"on\": true} or {\"on\": false}"}
        app.talk(on)
        return {"talking": app.turns.talking}

    def say(req: dict) -> dict:
        text = req.get("text")
        if not isinstance(text, str) or not text.strip():
            return {"ok": False, "error": "say needs {\"text\": \"...\"}"}
        if app.manager.conn is None:
            return {"ok": False, "error": f"not connected ({app.machine.state}); try again when the device is idle"}
        app.manager.say(text.strip())
        app.publish("say", {"text": text.strip()})
        return {"queued": True}

    def new_conversation(req: dict) -> dict:
        app.new_conversation()
        return {}

    return {"status": lambda req: app.status(), "mute": mute, "talk": talk, "say": say,
            "new_conversation": new_conversation}
