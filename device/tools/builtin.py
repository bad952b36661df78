"""The device's own tools: volume, mute, the time, ending the conversation."""

from __future__ import annotations

import time
from typing import Any, Protocol

from ..realtime.session import Tool
from .box import ToolFailed, ToolSpec


class DeviceControls(Protocol):
    def set_volume(self, level: int) -> None: ...
    def set_muted(self, muted: bool) -> None: ...
    def end_conversation(self) -> None: ...


def builtin_tools(device: DeviceControls, *, clock: Any = time) -> list[ToolSpec]:
    async def set_volume(args: dict[str, Any]) -> dict[str, Any]:
        level = args.get("level")
        if not isinstance(level, (int, float)) or isinstance(level, bool) or not 0 <= level <= 100:
            raise ToolFailed("level must be a number from 0 to 100")
        device.set_volume(int(level))
        return {"volume": int(level)}

    async def mute_microphone(args: dict[str, Any]) -> dict[str, Any]:
        muted = args.get("muted", True)
        if not isinstance(muted, bool):
            raise ToolFailed("muted must be true or false")
        device.set_muted(muted)
        return {"muted": muted}

    async def get_time(args: dict[str, Any]) -> dict[str, Any]:
        now = clock.localtime()
        return {"time": time.strftime("%H:%M", now), "date": time.strftime("%A %d %B %Y", now),
                "timezone": time.strftime("%Z", now)}

    async def end_conversation(args: dict[str, Any]) -> dict[str, Any]:
        device.end_conversation()
        return {"ended": True, "note": "say a short goodbye; the next conversation starts fresh"}

    return [
        ToolSpec(Tool(name="set_volume", description="Set the speaker volume of this device.",
                      parameters={"type": "object", "properties": {
                          "level": {"type": "integer", "minimum": 0, "maximum": 100,
                                    "description": "volume in percent"}}, "required": ["level"]}), set_volume),
        ToolSpec(Tool(name="mute_microphone", description="Mute (or unmute) this device's microphone. "
                      "Once muted, the person unmutes it with a double tap on the button.",
                      parameters={"type": "object", "properties": {"muted": {"type": "boolean"}}}), mute_microphone),
        ToolSpec(Tool(name="get_time", description="The current local date and time on this device."), get_time),
        ToolSpec(Tool(name="end_conversation", description="End the conversation when the person says goodbye; "
                      "the next one starts without memory of this one."), end_conversation),
    ]
