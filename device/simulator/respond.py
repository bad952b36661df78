"""The event choreography of one simulated response (reference section 2.4).

Audio out: response.created -> output_item.added -> conversation.item.added ->
content_part.added -> (transcript delta, audio delta)* -> output_audio.done ->
output_audio_transcript.done -> content_part.done -> conversation.item.done ->
output_item.done -> response.done -> rate_limits.updated (GA: after done; beta: after created).
A function call replaces the message part with function_call_arguments.delta*/done.

A reasoning model's response (gpt-realtime-2*, reference section 1) may hold several output
items, each with its own ``output_index``: a spoken preamble (``phase: "commentary"``), then
one or more function calls (parallel), or the answer (``phase: "final_answer"``). The answer
to tool calls comes in the next response, after the client's outputs and ``response.create``.

This module knows the session only through :class:`Host` (it imports nothing from
``session.py``, which imports this one).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..realtime import events as ev
from ..realtime.dialect import Dialect, model_takes_reasoning
from ..realtime.models import Item, RateLimit, Response
from . import replies

logger = logging.getLogger(__name__)
BYTES_PER_MS = 48
CHUNK_BYTES = 100 * BYTES_PER_MS


class Host(Protocol):
    """What a response needs from its simulated session."""

    dialect: Dialect
    session: dict[str, Any]
    items: list[dict[str, Any]]
    heard_ms: dict[str, int]
    audio_of: dict[str, bytearray]
    idle_items: set[str]
    text_bias: set[str]
    counts: dict[str, int]
    speedup: float
    first_audio_delay_s: float
    quirks: bool

    @property
    def ids(self) -> Callable[[str], str]: ...

    async def send(self, event: ev.ServerEvent) -> None: ...

    def synthesize(self, text: str) -> Awaitable[bytes]: ...


@dataclass
class Active:
    """The response in progress: its id, task, cancellation and the items it has output."""

    id: str
    params: dict[str, Any] = field(default_factory=dict)
    modalities: list[str] = field(default_factory=lambda: ["audio"])
    task: asyncio.Task[None] | None = None
    cancelled: asyncio.Event = field(default_factory=asyncio.Event)
    reason: str | None = None
    output: list[dict[str, Any]] = field(default_factory=list)
    audio_ms: int = 0

    @property
    def out_of_band(self) -> bool:
        return self.params.get("conversation") == "none"


def _event(host: Host, cls: type, **kwargs: Any) -> Any:
    return cls(event_id=host.ids("event"), **kwargs)


async def _pause(active: Active, seconds: float) -> None:
    """Sleep, but wake at once when the response is cancelled."""
    try:
        await asyncio.wait_for(active.cancelled.wait(), seconds)
    except TimeoutError:
        pass


def reply_modalities(host: Host, params: dict[str, Any]) -> list[str]:
    mods = params.get("output_modalities") or params.get("modalities") or host.session["output_modalities"]
    audio = "audio" in mods
    if audio and host.quirks and host.text_bias and "instructions" not in params:
        logger.info("simulator: replayed text items in the conversation; replying in text only")
        audio = False  # the text-only quirk, see session.py
    return ["audio"] if audio else ["text"]


def response_model(active: Active, status: str, usage: dict[str, Any] | None = None) -> Response:
    details = {"type": "cancelled", "reason": active.reason} if status == "cancelled" else None
    return Response(id=active.id, object="realtime.response", status=status, status_details=details,
                    output=[Item.from_dict(o) for o in active.output], usage=usage,
                    conversation_id=None, output_modalities=active.modalities)


async def rate_limits(host: Host) -> None:
    limits = [RateLimit(name="tokens", limit=15000000, remaining=14990000, reset_seconds=0.001)]
    if host.dialect is Dialect.BETA:
        limits.insert(0, RateLimit(name="requests", limit=5000, remaining=4999, reset_seconds=0.012))
    await host.send(_event(host, ev.RateLimitsUpdated, rate_limits=limits))


async def announce(host: Host, active: Active) -> None:
    """``response.created``: sent before the ``response.create`` handler returns, so an error
    for a second ``response.create`` always follows it (issue 11)."""
    active.modalities = reply_modalities(host, active.params)
    await host.send(_event(host, ev.ResponseCreated, response=response_model(active, "in_progress")))
    if host.dialect is Dialect.BETA:
        await rate_limits(host)


def _plan(host: Host) -> replies.Reply:
    last_user = next((i for i in reversed(host.items) if i.get("role") == "user"), None)
    heard_s = host.heard_ms.get(last_user["id"], 0) / 1000 if last_user else 0.0
    idle = last_user is not None and last_user["id"] in host.idle_items and host.items[-1] is last_user
    return replies.decide(host.items, host.session.get("tools") or [], heard_s=heard_s,
                          reasoning=model_takes_reasoning(host.session.get("model")),
                          parallel=host.session.get("parallel_tool_calls") is not False, idle=idle)


async def run_response(host: Host, active: Active) -> None:
    """Everything after ``response.created``: the output items, ``response.done``, rate limits."""
    reply = _plan(host)
    reasoning = model_takes_reasoning(host.session.get("model"))
    host.counts["responses"] += 1
    if reply.preamble:
        await _message(host, active, reply.preamble, phase="commentary")
    for call in reply.calls:
        if active.cancelled.is_set():
            break
        await _function_call(host, active, call)
    if reply.text is not None and not active.cancelled.is_set():
        await _message(host, active, reply.text, phase="final_answer" if reasoning else None)
    cancelled = active.cancelled.is_set()
    status = "cancelled" if cancelled else "completed"
    await host.send(_event(host, ev.ResponseDone, response=response_model(active, status, _usage(host, active))))
    if cancelled:
        host.counts["cancelled"] += 1
    if host.dialect is Dialect.GA:
        await rate_limits(host)


def _usage(host: Host, active: Active) -> dict[str, Any]:
    audio_tokens = text_tokens = 0
    for item in active.output:
        audio_tokens += len(host.audio_of.get(item["id"], b"")) // BYTES_PER_MS // 50
        text_tokens += len(Item.from_dict(item).text.split()) + len(item.get("arguments") or "") // 4
    inputs = sum(len(Item.from_dict(i).text.split()) for i in host.items) + 20
    return {"total_tokens": inputs + audio_tokens + text_tokens, "input_tokens": inputs,
            "output_tokens": audio_tokens + text_tokens,
            "input_token_details": {"text_tokens": inputs, "audio_tokens": 0, "image_tokens": 0, "cached_tokens": 0},
            "output_token_details": {"text_tokens": text_tokens, "audio_tokens": audio_tokens}}


async def _added(host: Host, active: Active, item: dict[str, Any]) -> int:
    """Announce a new output item; returns its ``output_index``."""
    index = len(active.output)
    active.output.append(item)
    await host.send(_event(host, ev.OutputItemAdded, response_id=active.id, output_index=index,
                           item=Item.from_dict(item)))
    if not active.out_of_band:
        previous = host.items[-1]["id"] if host.items else None
        host.items.append(item)
        await host.send(_event(host, ev.ConversationItemAdded, item=Item.from_dict(item), previous_item_id=previous))
    return index


async def _finished(host: Host, active: Active, item: dict[str, Any], index: int) -> None:
    item["status"] = "incomplete" if active.cancelled.is_set() else "completed"
    if not active.out_of_band:
        previous = next((host.items[n - 1]["id"] for n, i in enumerate(host.items) if i is item and n), None)
        await host.send(_event(host, ev.ConversationItemDone, item=Item.from_dict(item), previous_item_id=previous))
    await host.send(_event(host, ev.OutputItemDone, response_id=active.id, output_index=index,
                           item=Item.from_dict(item)))


async def _function_call(host: Host, active: Active, call: replies.Call) -> None:
    item = {"id": host.ids("item"), "object": "realtime.item", "type": "function_call", "status": "in_progress",
            "name": call.tool, "call_id": host.ids("call"), "arguments": ""}
    index = await _added(host, active, item)
    ids = {"response_id": active.id, "item_id": item["id"], "output_index": index, "call_id": item["call_id"]}
    json.loads(call.arguments)  # the simulator only ever sends valid JSON arguments
    half = len(call.arguments) // 2
    for piece in (call.arguments[:half], call.arguments[half:]):
        if piece and not active.cancelled.is_set():
            await host.send(_event(host, ev.FunctionCallArgumentsDelta, delta=piece, **ids))
            await _pause(active, 0.01)
    item["arguments"] = call.arguments
    await host.send(_event(host, ev.FunctionCallArgumentsDone, name=call.tool, arguments=call.arguments, **ids))
    await _finished(host, active, item, index)


async def _message(host: Host, active: Active, text: str, *, phase: str | None) -> None:
    item: dict[str, Any] = {"id": host.ids("item"), "object": "realtime.item", "type": "message",
                            "status": "in_progress", "role": "assistant", "content": []}
    if phase:
        item["phase"] = phase
    index = await _added(host, active, item)
    ids = {"response_id": active.id, "item_id": item["id"], "output_index": index, "content_index": 0}
    audio = active.modalities == ["audio"]
    part = {"type": "audio", "transcript": ""} if audio else {"type": "text", "text": ""}
    await host.send(_event(host, ev.ContentPartAdded, part=part, **ids))
    if audio:
        said = await _stream_audio(host, active, item["id"], text, ids)
        await host.send(_event(host, ev.AudioDone, **ids))
        await host.send(_event(host, ev.AudioTranscriptDone, transcript=said, **ids))
        part = {"type": "audio", "transcript": said}
        item["content"] = [{"type": "output_audio", "transcript": said}]
    else:
        said = await _stream_text(host, active, text, ids)
        await host.send(_event(host, ev.TextDone, text=said, **ids))
        part = {"type": "text", "text": said}
        item["content"] = [{"type": "output_text", "text": said}]
    await host.send(_event(host, ev.ContentPartDone, part=part, **ids))
    await _finished(host, active, item, index)


async def _stream_text(host: Host, active: Active, text: str, ids: dict[str, Any]) -> str:
    sent: list[str] = []
    for word in text.split():
        if active.cancelled.is_set():
            break
        await host.send(_event(host, ev.TextDelta, delta=(" " if sent else "") + word, **ids))
        sent.append(word)
        await _pause(active, 0.02 / host.speedup)
    return " ".join(sent)


async def _stream_audio(host: Host, active: Active, item_id: str, text: str, ids: dict[str, Any]) -> str:
    """Send the speech in 100 ms deltas, each preceded by the words it covers; return what was said."""
    pcm = await host.synthesize(text)
    words = text.split()
    chunks = [pcm[i:i + CHUNK_BYTES] for i in range(0, len(pcm), CHUNK_BYTES)]
    host.audio_of[item_id] = bytearray()
    said = 0
    await _pause(active, host.first_audio_delay_s)
    for n, chunk in enumerate(chunks):
        if active.cancelled.is_set():
            break
        upto = round((n + 1) * len(words) / len(chunks))
        if upto > said:
            delta = (" " if said else "") + " ".join(words[said:upto])
            await host.send(_event(host, ev.AudioTranscriptDelta, delta=delta, **ids))
            said = upto
        await host.send(ev.AudioDelta.from_pcm(chunk, event_id=host.ids("event"), **ids))
        host.audio_of[item_id] += chunk
        active.audio_ms += len(chunk) // BYTES_PER_MS
        await _pause(active, len(chunk) / BYTES_PER_MS / 1000 / host.speedup)
    return " ".join(words[:said])
