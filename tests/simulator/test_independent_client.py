"""An independent Realtime client, written from the API reference with plain websockets and json
(none of pivoice's protocol code), checks that the simulator answers protocol-correctly."""

from __future__ import annotations

import asyncio
import base64
import json
import time

import pytest
from websockets.asyncio.client import connect

GA_AUDIO_ORDER = [
    "response.created", "response.output_item.added", "conversation.item.added",
    "response.content_part.added", "response.output_audio.done", "response.output_audio_transcript.done",
    "response.content_part.done", "conversation.item.done", "response.output_item.done", "response.done",
    "rate_limits.updated"]
BETA_AUDIO_ORDER = [
    "response.created", "rate_limits.updated", "response.output_item.added", "conversation.item.created",
    "response.content_part.added", "response.audio.done", "response.audio_transcript.done",
    "response.content_part.done", "response.output_item.done", "response.done"]


async def receive_until(ws, last_type, limit=3000):
    out = []
    for _ in range(limit):
        msg = json.loads(await asyncio.wait_for(ws.recv(), 30))
        out.append(msg)
        if msg["type"] == last_type:
            return out
    raise AssertionError(f"never saw {last_type}")


def url(sim, model="gpt-realtime"):
    return f"ws://127.0.0.1:{sim.port}/v1/realtime?model={model}"


async def test_ga_conversation(simulator):
    async with connect(url(simulator), additional_headers={"Authorization": "Bearer sk-independent"}) as ws:
        created = json.loads(await ws.recv())
        assert created["type"] == "session.created" and created["event_id"].startswith("event_")
        session = created["session"]
        assert session["type"] == "realtime" and session["object"] == "realtime.session"
        assert session["audio"]["input"]["format"] == {"type": "audio/pcm", "rate": 24000}
        assert session["audio"]["input"]["turn_detection"]["type"] == "server_vad"
        assert 3500 < session["expires_at"] - time.time() <= 3600

        await ws.send(json.dumps({"type": "session.update", "session": {
            "type": "realtime", "instructions": "Be terse.", "output_modalities": ["audio"],
            "audio": {"output": {"voice": "alloy"}, "input": {"turn_detection": None}}}}))
        updated = json.loads(await ws.recv())
        assert updated["type"] == "session.updated"
        assert updated["session"]["instructions"] == "Be terse."
        assert updated["session"]["audio"]["output"]["voice"] == "alloy"
        assert updated["session"]["audio"]["input"]["turn_detection"] is None

        await ws.send(json.dumps({"type": "conversation.item.create", "item": {
            "type": "message", "role": "user", "content": [{"type": "input_text", "text": "Good morning"}]}}))
        added, done = json.loads(await ws.recv()), json.loads(await ws.recv())
        assert (added["type"], done["type"]) == ("conversation.item.added", "conversation.item.done")
        assert added["item"]["id"].startswith("item_") and added["item"]["role"] == "user"

        await ws.send(json.dumps({"type": "response.create"}))
        events = await receive_until(ws, "rate_limits.updated")
        order = [e["type"] for e in events if not e["type"].endswith(".delta")]
        assert order == GA_AUDIO_ORDER
        audio = b"".join(base64.b64decode(e["delta"]) for e in events if e["type"] == "response.output_audio.delta")
        assert len(audio) % 2 == 0 and len(audio) > 48 * 500
        final = events[-2]["response"]
        assert final["status"] == "completed" and final["output"][0]["content"][0]["type"] == "output_audio"
        assert final["usage"]["output_token_details"]["audio_tokens"] > 0
        assert [r["name"] for r in events[-1]["rate_limits"]] == ["tokens"]

        # errors are non-fatal and shaped like the real server's
        await ws.send(json.dumps({"type": "tool.output"}))
        err = json.loads(await ws.recv())
        assert err["type"] == "error" and err["error"]["code"] == "invalid_value"
        assert err["error"]["message"].startswith("Invalid value: 'tool.output'. Supported values are: 'session.update'")
        await ws.send("not json at all")
        assert json.loads(await ws.recv())["error"]["code"] == "invalid_json"
        await ws.send(b"\x01\x02")
        assert json.loads(await ws.recv())["error"]["code"] == "invalid_event"
        await ws.send(json.dumps({"type": "session.update", "session": {"modalities": ["text"]}}))
        err = json.loads(await ws.recv())["error"]
        assert err["code"] == "unknown_parameter" and err["message"] == "Unknown parameter: 'session.modalities'."
        await ws.send(json.dumps({"type": "session.update", "session": {"instructions": "x"}}))
        assert json.loads(await ws.recv())["error"]["code"] == "missing_required_parameter"
        await ws.send(json.dumps({"type": "session.update", "session": {
            "type": "realtime", "audio": {"input": {"format": {"type": "audio/pcm", "rate": 16000}}}}}))
        err = json.loads(await ws.recv())["error"]
        assert err["code"] == "integer_below_min_value" and "Expected a value >= 24000" in err["message"]
        await ws.send(json.dumps({"type": "response.cancel"}))
        assert json.loads(await ws.recv())["error"]["code"] == "response_cancel_not_active"


async def test_beta_conversation(simulator_factory):
    sim = await simulator_factory(dialect="beta")
    headers = {"Authorization": "Bearer sk-independent", "OpenAI-Beta": "realtime=v1"}
    async with connect(url(sim, "gpt-4o-realtime-preview-2025-06-03"), additional_headers=headers) as ws:
        session = json.loads(await ws.recv())["session"]
        assert session["modalities"] == ["audio", "text"] and session["input_audio_format"] == "pcm16"
        assert "type" not in session and session["voice"]
        await ws.send(json.dumps({"type": "session.update", "session": {
            "modalities": ["text", "audio"], "voice": "verse", "turn_detection": None, "temperature": 0.7}}))
        updated = json.loads(await ws.recv())
        assert updated["type"] == "session.updated" and updated["session"]["voice"] == "verse"
        await ws.send(json.dumps({"type": "conversation.item.create", "item": {
            "type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hi"}]}}))
        assert json.loads(await ws.recv())["type"] == "conversation.item.created"
        await ws.send(json.dumps({"type": "response.create"}))
        events = await receive_until(ws, "response.done")
        assert [e["type"] for e in events if not e["type"].endswith(".delta")] == BETA_AUDIO_ORDER
        assert {e["type"] for e in events if e["type"].endswith(".delta")} == {
            "response.audio.delta", "response.audio_transcript.delta"}
        assert [r["name"] for r in events[1]["rate_limits"]] == ["requests", "tokens"]
        assert events[-1]["response"]["output"][0]["content"][0]["type"] == "audio"
        await ws.send(json.dumps({"type": "transcription.update"}))
        err = json.loads(await ws.recv())["error"]
        assert "'transcription_session.update'" in err["message"]


@pytest.mark.parametrize("headers, model, code, close", [
    ({"Authorization": "Bearer sk-x", "OpenAI-Beta": "realtime=v1"}, "gpt-realtime", "beta_api_shape_disabled", 4000),
    ({}, "gpt-realtime", None, 3000),
    ({"Authorization": "Bearer sk-x"}, "", "missing_model", 4000),
    ({"Authorization": "Bearer sk-x"}, "gpt-nope", "invalid_model", 4000),
])
async def test_ga_handshake_failures_are_in_band(simulator, headers, model, code, close):
    async with connect(url(simulator, model), additional_headers=headers) as ws:
        first = json.loads(await ws.recv())
        assert first["type"] == "error" and first["error"]["code"] == code
        await ws.wait_closed()
        assert ws.close_code == close
