"""Tools never hang and never raise: errors become results the model can talk about."""

from __future__ import annotations

import asyncio
import json

from device.tools.box import ToolBox, ToolFailed, ToolSpec
from device.tools.builtin import builtin_tools
from device.realtime.session import Tool


class Device:
    def __init__(self):
        self.volume, self.muted, self.ended = None, None, False

    def set_volume(self, level):
        self.volume = level

    def set_muted(self, muted):
        self.muted = muted

    def end_conversation(self):
        self.ended = True


async def test_builtin_tools():
    device = Device()
    box = ToolBox(builtin_tools(device))
    assert [t.name for t in box.tools()] == ["set_volume", "mute_microphone", "get_time", "end_conversation"]
    assert json.loads(await box.call("set_volume", '{"level": 40}')) == {"volume": 40} and device.volume == 40
    assert "error" in json.loads(await box.call("set_volume", '{"level": 400}')) and device.volume == 40
    assert json.loads(await box.call("mute_microphone", "{}")) == {"muted": True} and device.muted
    assert set(json.loads(await box.call("get_time", ""))) == {"time", "date", "timezone"}
    await box.call("end_conversation", "{}")
    assert device.ended


async def test_failures_become_results():
    async def slow(args):
        await asyncio.sleep(10)

    async def broken(args):
        raise RuntimeError("bug")

    async def refuses(args):
        raise ToolFailed("the lights are offline")

    box = ToolBox([ToolSpec(Tool(name="slow"), slow, timeout_s=0.05), ToolSpec(Tool(name="broken"), broken),
                   ToolSpec(Tool(name="refuses"), refuses)])
    assert json.loads(await box.call("slow", "{}")) == {"error": "the tool did not answer within 0.05 s"}
    assert json.loads(await box.call("broken", "{}")) == {"error": "the tool failed: RuntimeError"}
    assert json.loads(await box.call("refuses", "{}")) == {"error": "the lights are offline"}
    assert "no tool named" in json.loads(await box.call("missing", "{}"))["error"]
    assert "not valid JSON" in json.loads(await box.call("slow", "{nope"))["error"]
    assert box.failures == 5
