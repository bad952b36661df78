"""Reasoning models and server fidelity, checked by an independent client: plain websockets and
json written from the API reference (sections 1, 2, 4, 8), none of pivoice's protocol code."""

from __future__ import annotations

import asyncio
import base64
import json

from websockets.asyncio.client import connect

HEADERS = {"Authorization": "Bearer sk-independent"}
TOOLS = [
    {"type": "function", "name": "get_time", "description": "The time.", "parameters": {"type": "object", "properties": {}}},
    {"type": "function", "name": "set_volume", "description": "Set the volume.",
     "parameters": {"type": "object", "properties": {"level": {"type": "integer"}}}},
]


def url(sim, model):
    return f"ws://127.0.0.1:{sim.port}/v1/realtime?model={model}"


async def recv(ws):
    return json.loads(await asyncio.wait_for(ws.recv(), 30))


async def until(ws, last_type):
    out = []
    while True:
        msg = await recv(ws)
        out.append(msg)
        if msg["type"] == last_type:
            return out


async def update(ws, **session):
    await ws.send(json.dumps({"type": "session.update", "session": {"type": "realtime", **session}}))
    return await recv(ws)


async def say(ws, text):
    await ws.send(json.dumps({"type": "conversation.item.create", "item": {
        "type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}}))
    await until(ws, "conversation.item.done")
    await ws.send(json.dumps({"type": "response.create"}))
    return await until(ws, "response.done")


def transcript_of(events, item_id):
    return "".join(e["delta"] for e in events
                   if e["type"] == "response.output_audio_transcript.delta" and e["item_id"] == item_id)


async def test_reasoning_effort_is_taken_by_gpt_realtime_2_only(simulator):
    async with connect(url(simulator, "gpt-realtime-2"), additional_headers=HEADERS) as ws:
        created = (await recv(ws))["session"]
        assert created["reasoning"] == {"effort": "low"}
        updated = await update(ws, reasoning={"effort": "high"})
        assert updated["type"] == "session.updated" and updated["session"]["reasoning"] == {"effort": "high"}
        err = await update(ws, reasoning={"effort": "max"})
        assert err["type"] == "error" and err["error"]["code"] == "invalid_value"
        assert err["error"]["param"] == "session.reasoning.effort" and "'xhigh'" in err["error"]["message"]
    async with connect(url(simulator, "gpt-realtime-1.5"), additional_headers=HEADERS) as ws:
        assert "reasoning" not in (await recv(ws))["session"]
        err = await update(ws, instructions="Be brief.", reasoning={"effort": "low"})
        assert err["type"] == "error" and err["error"]["code"] == "unsupported_parameter"
        assert err["error"]["param"] == "session.reasoning.effort"
        # the whole update was discarded: the instructions did not change either
        updated = await update(ws, tools=[])
        assert updated["session"]["instructions"] != "Be brief." and "reasoning" not in updated["session"]


async def test_preamble_then_parallel_calls_then_final_answer(simulator):
    async with connect(url(simulator, "gpt-realtime-2"), additional_headers=HEADERS) as ws:
        await recv(ws)
        await update(ws, tools=TOOLS)
        events = await say(ws, "what time is it and set the volume to 30")
        added = [e for e in events if e["type"] == "response.output_item.added"]
        assert [(e["output_index"], e["item"]["type"]) for e in added] == [
            (0, "message"), (1, "function_call"), (2, "function_call")]
        preamble = added[0]["item"]
        assert preamble["phase"] == "commentary" and preamble["role"] == "assistant"
        audio = [e for e in events if e["type"] == "response.output_audio.delta"]
        assert audio and {(e["item_id"], e["output_index"]) for e in audio} == {(preamble["id"], 0)}
        assert transcript_of(events, preamble["id"]) == "Let me check that."
        calls = {e["name"]: e for e in events if e["type"] == "response.function_call_arguments.done"}
        assert json.loads(calls["get_time"]["arguments"]) == {}
        assert json.loads(calls["set_volume"]["arguments"]) == {"level": 30}
        assert {e["output_index"] for e in calls.values()} == {1, 2}
        done = events[-1]["response"]
        assert done["status"] == "completed"
        assert [o.get("phase") for o in done["output"]] == ["commentary", None, None]
        assert [o["type"] for o in done["output"]] == ["message", "function_call", "function_call"]
        await recv(ws)  # rate_limits.updated

        for name, output in (("get_time", {"time": "10:30"}), ("set_volume", {"volume": 30})):
            await ws.send(json.dumps({"type": "conversation.item.create", "item": {
                "type": "function_call_output", "call_id": calls[name]["call_id"], "output": json.dumps(output)}}))
            assert (await until(ws, "conversation.item.done"))[0]["type"] == "conversation.item.added"
        await ws.send(json.dumps({"type": "response.create"}))
        events = await until(ws, "response.done")
        (answer,) = [e["item"] for e in events if e["type"] == "response.output_item.added"]
        assert answer["phase"] == "final_answer"
        assert transcript_of(events, answer["id"]) == "Done. The results are time 10:30; volume 30."
        # a long answer to tool outputs still comes alone: its preamble was spoken before the calls
        await ws.send(json.dumps({"type": "conversation.item.create", "item": {
            "type": "message", "role": "user", "content": [{"type": "input_text", "text": "what time is it"}]}}))
        await until(ws, "conversation.item.done")
        await ws.send(json.dumps({"type": "response.create"}))
        call = [e for e in await until(ws, "response.done") if e["type"] == "response.function_call_arguments.done"]
        long_output = {"time": "10:31", "date": "Friday 27 November 2026", "timezone": "UTC", "dst": "no"}
        await ws.send(json.dumps({"type": "conversation.item.create", "item": {
            "type": "function_call_output", "call_id": call[0]["call_id"], "output": json.dumps(long_output)}}))
        await until(ws, "conversation.item.done")
        await ws.send(json.dumps({"type": "response.create"}))
        output = (await until(ws, "response.done"))[-1]["response"]["output"]
        assert [o["phase"] for o in output] == ["final_answer"]
        assert len(output[0]["content"][0]["transcript"].split()) >= 12


async def test_long_answers_get_a_preamble_and_older_models_do_not(simulator):
    long_turn = "please tell me again the long list of things that I asked you to remember today"
    async with connect(url(simulator, "gpt-realtime-2"), additional_headers=HEADERS) as ws:
        await recv(ws)
        events = await say(ws, long_turn)
        output = events[-1]["response"]["output"]
        assert [o["phase"] for o in output] == ["commentary", "final_answer"]
        assert output[0]["content"][0]["transcript"] == "Let me think about that."
        assert output[1]["content"][0]["transcript"].startswith("You said: please tell me")
        items_done = [e["item"]["id"] for e in events if e["type"] == "response.output_item.done"]
        assert items_done == [o["id"] for o in output]
    async with connect(url(simulator, "gpt-realtime-1.5"), additional_headers=HEADERS) as ws:
        await recv(ws)
        await update(ws, tools=TOOLS)
        output = (await say(ws, long_turn))[-1]["response"]["output"]
        assert len(output) == 1 and "phase" not in output[0]
        output = (await say(ws, "what time is it and set the volume to 30"))[-1]["response"]["output"]
        assert [o["type"] for o in output] == ["function_call"] and output[0]["name"] == "get_time"


async def test_turn_detection_is_echoed_whole_with_defaults(simulator):
    async with connect(url(simulator, "gpt-realtime"), additional_headers=HEADERS) as ws:
        await recv(ws)
        updated = await update(ws, audio={"input": {"turn_detection": {"type": "server_vad", "idle_timeout_ms": 6000}}})
        assert updated["session"]["audio"]["input"]["turn_detection"] == {
            "type": "server_vad", "threshold": 0.5, "prefix_padding_ms": 300, "silence_duration_ms": 200,
            "idle_timeout_ms": 6000, "create_response": True, "interrupt_response": True}
        updated = await update(ws, audio={"input": {"turn_detection": {"type": "server_vad", "threshold": 0.7}}})
        assert updated["session"]["audio"]["input"]["turn_detection"]["idle_timeout_ms"] is None
        assert updated["session"]["audio"]["input"]["turn_detection"]["silence_duration_ms"] == 200
        err = await update(ws, audio={"input": {"turn_detection": {"type": "server_vad", "idle_timeout_ms": 1000}}})
        assert err["error"]["code"] == "integer_below_min_value"
        assert err["error"]["param"] == "session.audio.input.turn_detection.idle_timeout_ms"


async def test_committed_carries_previous_item_id(simulator):
    async with connect(url(simulator, "gpt-realtime"), additional_headers=HEADERS) as ws:
        await recv(ws)
        await update(ws, audio={"input": {"turn_detection": None}})
        committed = []
        for _ in range(2):
            await ws.send(json.dumps({"type": "input_audio_buffer.append",
                                      "audio": base64.b64encode(bytes(48 * 200)).decode()}))
            await ws.send(json.dumps({"type": "input_audio_buffer.commit"}))
            committed.append((await until(ws, "conversation.item.done"))[0])
        assert [c["type"] for c in committed] == ["input_audio_buffer.committed"] * 2
        assert "previous_item_id" in committed[0] and committed[0]["previous_item_id"] is None
        assert committed[1]["previous_item_id"] == committed[0]["item_id"]


async def test_idle_timeout_triggers_after_the_reply_has_played(simulator):
    async with connect(url(simulator, "gpt-realtime"), additional_headers=HEADERS) as ws:
        await recv(ws)
        await update(ws, audio={"input": {"turn_detection": {"type": "server_vad", "idle_timeout_ms": 5000}}})
        events = await say(ws, "hello")
        reply_ms = sum(len(base64.b64decode(e["delta"])) for e in events
                       if e["type"] == "response.output_audio.delta") // 48
        await recv(ws)  # rate_limits.updated
        sent_ms, got = 0, []
        while not got:
            await ws.send(json.dumps({"type": "input_audio_buffer.append",
                                      "audio": base64.b64encode(bytes(48 * 100)).decode()}))
            sent_ms += 100
            if sent_ms >= reply_ms + 5000:
                got = await until(ws, "response.done")
        timeout, committed = got[0], got[1]
        assert timeout["type"] == "input_audio_buffer.timeout_triggered"
        assert timeout["audio_end_ms"] == sent_ms and reply_ms + 5000 <= sent_ms < reply_ms + 5100
        assert timeout["audio_start_ms"] == 0
        assert committed["type"] == "input_audio_buffer.committed" and committed["item_id"] == timeout["item_id"]
        assert any(e["type"] == "response.created" for e in got)
        assert "".join(e["delta"] for e in got if e["type"] == "response.output_audio_transcript.delta") == \
            "Are you still there?"


async def test_second_response_create_is_refused_after_the_first_is_created(simulator_factory):
    sim = await simulator_factory(speedup=1.0)
    async with connect(url(sim, "gpt-realtime"), additional_headers=HEADERS) as ws:
        await recv(ws)
        await ws.send(json.dumps({"type": "conversation.item.create", "item": {
            "type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}}))
        await until(ws, "conversation.item.done")
        await ws.send(json.dumps({"type": "response.create"}))
        await ws.send(json.dumps({"type": "response.create"}))
        events = await until(ws, "error")
        kinds = [e["type"] for e in events]
        assert kinds[0] == "response.created"
        err = events[-1]["error"]
        assert err["code"] == "conversation_already_has_active_response"
        assert events[0]["response"]["id"] in err["message"]
        await ws.send(json.dumps({"type": "response.cancel"}))
        assert (await until(ws, "response.done"))[-1]["response"]["status"] == "cancelled"


async def test_parallel_tool_calls_false_makes_one_call_at_a_time(simulator):
    async with connect(url(simulator, "gpt-realtime-2"), additional_headers=HEADERS) as ws:
        await recv(ws)
        updated = await update(ws, tools=TOOLS, parallel_tool_calls=False)
        assert updated["session"]["parallel_tool_calls"] is False
        output = (await say(ws, "what time is it and set the volume to 30"))[-1]["response"]["output"]
        assert [(o["type"], o.get("phase"), o.get("name")) for o in output] == [
            ("message", "commentary", None), ("function_call", None, "get_time")]
