"""The event choreography of one simulated response (reference section 2.4).

Audio out: response.created -> output_item.added -> conversation.item.added ->
content_part.added -> (transcript delta, audio delta)* -> output_audio.done ->
output_audio_transcript.done -> content_part.done -> conversation.item.done ->
output_item.done -> response.done -> rate_limits.updated (GA: after done; beta: after created).
A function call replaces the message part with function_call_arguments.delta*/done.
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

from ..realtime import events as ev
from ..realtime.dialect import Dialect
from ..realtime.models import Item
from . import replies

if TYPE_CHECKING:
    from .session import SimSession, _Active

BYTES_PER_MS = 48
CHUNK_BYTES = 100 * BYTES_PER_MS


async def _pause(active: _Active, seconds: float) -> None:
    """Sleep, but wake at once when the response is cancelled."""
    try:
        await asyncio.wait_for(active.cancelled.wait(), seconds)
    except asyncio.TimeoutError:
        pass


async def run_response(sim: SimSession, active: _Active, params: dict[str, Any]) -> None:
    modalities = sim.reply_modalities(params)
    out_of_band = params.get("conversation") == "none"
    await sim.send(sim._event(ev.ResponseCreated, response=sim.response_model(active, "in_progress", [], modalities)))
    if sim.dialect is Dialect.BETA:
        await sim.rate_limits()
    last_user = next((i for i in reversed(sim.items) if i.get("role") == "user"), None)
    heard_s = sim.heard_ms.get(last_user["id"], 0) / 1000 if last_user else 0.0
    reply = replies.decide(sim.items, sim.session.get("tools") or [], heard_s=heard_s)
    if params.get("instructions") and not reply.tool and reply.text is None:
        reply = replies.Reply(text=params["instructions"])
    sim.counts["responses"] += 1
    if reply.tool:
        item = await _function_call(sim, active, reply, out_of_band)
    else:
        item = await _message(sim, active, reply.text or "", modalities, out_of_band)
    cancelled = active.cancelled.is_set()
    status = "cancelled" if cancelled else "completed"
    usage = _usage(sim, item)
    await sim.send(sim._event(ev.ResponseDone, response=sim.response_model(active, status, [item], modalities, usage)))
    if cancelled:
        sim.counts["cancelled"] += 1
    if sim.dialect is Dialect.GA:
        await sim.rate_limits()


def _usage(sim: SimSession, item: dict[str, Any]) -> dict[str, Any]:
    audio_ms = len(sim.audio_of.get(item["id"], b"")) // BYTES_PER_MS
    audio_tokens = audio_ms // 50
    text_tokens = len(Item.from_dict(item).text.split()) + len(item.get("arguments") or "") // 4
    inputs = sum(len(Item.from_dict(i).text.split()) for i in sim.items) + 20
    return {"total_tokens": inputs + audio_tokens + text_tokens, "input_tokens": inputs,
            "output_tokens": audio_tokens + text_tokens,
            "input_token_details": {"text_tokens": inputs, "audio_tokens": 0, "image_tokens": 0, "cached_tokens": 0},
            "output_token_details": {"text_tokens": text_tokens, "audio_tokens": audio_tokens}}


async def _added(sim: SimSession, active: _Active, item: dict[str, Any], out_of_band: bool) -> None:
    await sim.send(sim._event(ev.OutputItemAdded, response_id=active.id, output_index=0, item=Item.from_dict(item)))
    if not out_of_band:
        previous = sim.items[-1]["id"] if sim.items else None
        sim.items.append(item)
        await sim.send(sim._event(ev.ConversationItemAdded, item=Item.from_dict(item), previous_item_id=previous))


async def _finished(sim: SimSession, active: _Active, item: dict[str, Any], out_of_band: bool) -> None:
    item["status"] = "incomplete" if active.cancelled.is_set() else "completed"
    if not out_of_band:
        await sim.send(sim._event(ev.ConversationItemDone, item=Item.from_dict(item)))
    await sim.send(sim._event(ev.OutputItemDone, response_id=active.id, output_index=0, item=Item.from_dict(item)))


async def _function_call(sim: SimSession, active: _Active, reply: replies.Reply, out_of_band: bool) -> dict[str, Any]:
    item = {"id": sim.ids("item"), "object": "realtime.item", "type": "function_call", "status": "in_progress",
            "name": reply.tool, "call_id": sim.ids("call"), "arguments": ""}
    await _added(sim, active, item, out_of_band)
    arguments = reply.arguments or "{}"
    half = len(arguments) // 2
    for piece in (arguments[:half], arguments[half:]):
        if piece and not active.cancelled.is_set():
            await sim.send(sim._event(ev.FunctionCallArgumentsDelta, response_id=active.id, item_id=item["id"],
                                      call_id=item["call_id"], delta=piece))
            await _pause(active, 0.01)
    item["arguments"] = arguments
    await sim.send(sim._event(ev.FunctionCallArgumentsDone, response_id=active.id, item_id=item["id"],
                              call_id=item["call_id"], name=reply.tool, arguments=arguments))
    json.loads(arguments)  # the simulator only ever sends valid JSON arguments
    await _finished(sim, active, item, out_of_band)
    return item


async def _message(sim: SimSession, active: _Active, text: str, modalities: list[str],
                   out_of_band: bool) -> dict[str, Any]:
    item: dict[str, Any] = {"id": sim.ids("item"), "object": "realtime.item", "type": "message",
                            "status": "in_progress", "role": "assistant", "content": []}
    await _added(sim, active, item, out_of_band)
    ids = {"response_id": active.id, "item_id": item["id"], "output_index": 0, "content_index": 0}
    audio = modalities == ["audio"]
    part = {"type": "audio", "transcript": ""} if audio else {"type": "text", "text": ""}
    await sim.send(sim._event(ev.ContentPartAdded, part=part, **ids))
    words = text.split()
    if audio:
        said = await _stream_audio(sim, active, item["id"], text, ids)
        await sim.send(sim._event(ev.AudioDone, **ids))
        await sim.send(sim._event(ev.AudioTranscriptDone, transcript=said, **ids))
        part = {"type": "audio", "transcript": said}
        item["content"] = [{"type": "output_audio", "transcript": said}]
    else:
        sent: list[str] = []
        for word in words:
            if active.cancelled.is_set():
                break
            await sim.send(sim._event(ev.TextDelta, delta=(" " if sent else "") + word, **ids))
            sent.append(word)
            await _pause(active, 0.02 / sim.speedup)
        said = " ".join(sent)
        await sim.send(sim._event(ev.TextDone, text=said, **ids))
        part = {"type": "text", "text": said}
        item["content"] = [{"type": "output_text", "text": said}]
    await sim.send(sim._event(ev.ContentPartDone, part=part, **ids))
    await _finished(sim, active, item, out_of_band)
    return item


async def _stream_audio(sim: SimSession, active: _Active, item_id: str, text: str, ids: dict[str, Any]) -> str:
    """Send the speech in 100 ms deltas, each preceded by the words it covers; return what was said."""
    pcm = await sim.synthesize(text)
    words = text.split()
    chunks = [pcm[i:i + CHUNK_BYTES] for i in range(0, len(pcm), CHUNK_BYTES)]
    sim.audio_of[item_id] = bytearray()
    said = 0
    await _pause(active, sim.first_audio_delay_s)
    for n, chunk in enumerate(chunks):
        if active.cancelled.is_set():
            break
        upto = round((n + 1) * len(words) / len(chunks))
        if upto > said:
            delta = (" " if said else "") + " ".join(words[said:upto])
            await sim.send(sim._event(ev.AudioTranscriptDelta, delta=delta, **ids))
            said = upto
        await sim.send(ev.AudioDelta.from_pcm(chunk, event_id=sim.ids("event"), **ids))
        sim.audio_of[item_id] += chunk
        await _pause(active, len(chunk) / BYTES_PER_MS / 1000 / sim.speedup)
    return " ".join(words[:said])
