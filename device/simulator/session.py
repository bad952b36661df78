"""One simulated Realtime session: the conversation, the input buffer, server VAD, responses.

Theory of operation: the server loop hands every parsed client event to :meth:`handle`, in
order; everything the session says goes out through the ``emit`` coroutine it was given, so
the session never touches a socket. Responses run as tasks (one active at a time, reference
section 11.6) and stream audio faster than real time (``speedup``), so a person can still
talk over them. Cancellation, by ``response.cancel`` or by speech while ``interrupt_response``
is on, emits the remaining done events with ``incomplete`` items and ``response.done``
``cancelled`` with its reason (section 6).

Quirk kept on purpose (field notes item 3, seed 002): while the conversation holds ``system``
or assistant *text* items that the client created, replies come back as text only, with no
audio. A device that replays history as text must notice and fall back.
"""

from __future__ import annotations

import asyncio
import logging
import random
import string
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from ..realtime import events as ev
from ..realtime.dialect import Dialect
from ..realtime.models import ErrorDetail, Item, RateLimit, Response
from . import replies
from .respond import run_response
from .config import SimError, apply_update, default_session, render_session
from .vad import EnergyVad, VadStart
from .voice import synthesize

logger = logging.getLogger(__name__)
BYTES_PER_MS = 48  # 24 kHz PCM16 mono
CHUNK_MS = 100


class Ids:
    """Ids shaped like the real ones: prefix + 21 letters and digits, from a seeded RNG."""

    def __init__(self, seed: int | None = None) -> None:
        self._rng = random.Random(seed)

    def __call__(self, prefix: str) -> str:
        return prefix + "_" + "".join(self._rng.choices(string.ascii_letters + string.digits, k=21))


@dataclass
class _Active:
    id: str
    task: asyncio.Task | None = None
    cancelled: asyncio.Event = field(default_factory=asyncio.Event)
    reason: str | None = None


class SimSession:
    def __init__(self, emit: Callable[[ev.ServerEvent], Awaitable[None]], *, dialect: Dialect, model: str,
                 expires_at: int, ids: Ids, speedup: float = 4.0, first_audio_delay_s: float = 0.05,
                 quirks: bool = True) -> None:
        self._emit = emit
        self.dialect = dialect
        self.ids = ids
        self.speedup = speedup
        self.first_audio_delay_s = first_audio_delay_s
        self.quirks = quirks
        self.session = default_session(ids("sess"), model, expires_at)
        self.items: list[dict[str, Any]] = []
        self.audio_of: dict[str, bytearray] = {}   # assistant item id -> audio bytes sent
        self.heard_ms: dict[str, int] = {}          # user item id -> length of its audio
        self.text_bias: set[str] = set()            # client-created system / assistant text items
        self.input = bytearray()
        self.input_start_ms = 0                     # session audio position of input[0]
        self.audio_ms = 0                           # all audio appended this session
        self.active: _Active | None = None
        self.counts = {"responses": 0, "cancelled": 0}
        self._speech_item: str | None = None
        self._speech_start_ms = 0
        self._vad = self._make_vad()

    # ------------------------------------------------------------------------- plumbing
    async def send(self, event: ev.ServerEvent) -> None:
        await self._emit(event)

    async def error(self, err: SimError, client_event_id: str | None = None) -> None:
        await self.send(ev.ErrorEvent(event_id=self.ids("event"), error=ErrorDetail(
            type=err.type, code=err.code, message=err.message, param=err.param, event_id=client_event_id)))

    def _event(self, cls: type, **kwargs: Any) -> Any:
        return cls(event_id=self.ids("event"), **kwargs)

    @property
    def turn_detection(self) -> dict[str, Any] | None:
        return self.session["audio"]["input"]["turn_detection"]

    def _make_vad(self) -> EnergyVad | None:
        turn = self.turn_detection
        if not turn:
            return None
        vad = EnergyVad(threshold=turn.get("threshold", 0.5), prefix_padding_ms=turn.get("prefix_padding_ms", 300),
                        silence_duration_ms=turn.get("silence_duration_ms", 200))
        vad.position_ms = self.audio_ms
        return vad

    async def start(self) -> None:
        await self.send(self._event(ev.SessionCreated, session=render_session(self.session, self.dialect)))

    async def close(self) -> None:
        if self.active and self.active.task:
            self.active.task.cancel()

    # -------------------------------------------------------------------------- dispatch
    async def handle(self, event: ev.ClientEvent) -> None:
        handler = getattr(self, "_on_" + event.TYPE.replace(".", "_"))
        try:
            await handler(event)
        except SimError as err:
            await self.error(err, event.event_id)

    async def _on_session_update(self, event: ev.SessionUpdate) -> None:
        has_audio = any(self.audio_of.values())
        self.session = apply_update(self.session, event.session, self.dialect, has_assistant_audio=has_audio)
        self._vad = self._make_vad()
        await self.send(self._event(ev.SessionUpdated, session=render_session(self.session, self.dialect)))

    async def _on_input_audio_buffer_append(self, event: ev.InputAudioAppend) -> None:
        try:
            pcm = event.pcm
        except Exception:
            raise SimError("invalid_value", "Invalid 'audio': expected base64-encoded audio.", "audio") from None
        self.input += pcm
        self.audio_ms += len(pcm) // BYTES_PER_MS
        if self._vad is None:
            return
        for mark in self._vad.feed(pcm):
            if isinstance(mark, VadStart):
                await self._speech_started(mark.audio_start_ms)
            else:
                await self._speech_stopped(mark.audio_end_ms)

    async def _speech_started(self, start_ms: int) -> None:
        self._speech_item = self.ids("item")
        self._speech_start_ms = max(start_ms, self.input_start_ms)
        await self.send(self._event(ev.SpeechStarted, audio_start_ms=start_ms, item_id=self._speech_item))
        turn = self.turn_detection or {}
        if self.active and turn.get("interrupt_response", True):
            await self.cancel_active("turn_detected")

    async def _speech_stopped(self, end_ms: int) -> None:
        item_id = self._speech_item or self.ids("item")
        await self.send(self._event(ev.SpeechStopped, audio_end_ms=end_ms, item_id=item_id))
        first = (self._speech_start_ms - self.input_start_ms) * BYTES_PER_MS
        last = (end_ms - self.input_start_ms) * BYTES_PER_MS
        segment = bytes(self.input[max(0, first):last])
        del self.input[:last]
        self.input_start_ms = end_ms
        await self._commit(item_id, segment)
        if (self.turn_detection or {}).get("create_response", True) and not self.active:
            self._start_response({})

    async def _on_input_audio_buffer_commit(self, event: ev.InputAudioCommit) -> None:
        have_ms = len(self.input) / BYTES_PER_MS
        if have_ms < 100:
            raise SimError("input_audio_buffer_commit_empty",
                           "Error committing input audio buffer: buffer too small. Expected at least 100ms "
                           f"of audio, but buffer only has {have_ms:.2f}ms of audio.")
        segment = bytes(self.input)
        self.input.clear()
        self.input_start_ms = self.audio_ms
        await self._commit(self.ids("item"), segment)

    async def _on_input_audio_buffer_clear(self, event: ev.InputAudioClear) -> None:
        self.input.clear()
        self.input_start_ms = self.audio_ms
        await self.send(self._event(ev.InputAudioCleared))

    async def _commit(self, item_id: str, pcm: bytes) -> None:
        previous = self.items[-1]["id"] if self.items else None
        item = {"id": item_id, "object": "realtime.item", "type": "message", "status": "completed",
                "role": "user", "content": [{"type": "input_audio", "transcript": None}]}
        self.items.append(item)
        self.heard_ms[item_id] = len(pcm) // BYTES_PER_MS
        await self.send(self._event(ev.InputAudioCommitted, item_id=item_id, previous_item_id=previous))
        await self._item_added(item, previous)
        transcript = await asyncio.to_thread(replies.transcribe, pcm)
        if transcript is not None:
            item["content"][0]["transcript"] = transcript
            if self.session["audio"]["input"]["transcription"]:
                await self.send(self._event(ev.InputTranscriptionCompleted, item_id=item_id, content_index=0,
                                            transcript=transcript, usage={"type": "duration",
                                                                          "seconds": round(len(pcm) / 48000, 2)}))

    async def _item_added(self, item: dict[str, Any], previous: str | None) -> None:
        model = Item.from_dict(item)
        await self.send(self._event(ev.ConversationItemAdded, item=model, previous_item_id=previous))
        await self.send(self._event(ev.ConversationItemDone, item=model, previous_item_id=previous))

    # ---------------------------------------------------------------------- conversation
    async def _on_conversation_item_create(self, event: ev.ItemCreate) -> None:
        item = event.item.to_dict()
        self._check_new_item(item)
        item.setdefault("id", self.ids("item"))
        item.update(object="realtime.item", status="completed")
        if any(i["id"] == item["id"] for i in self.items):
            raise SimError("invalid_value", f"Item with id '{item['id']}' already exists.", "item.id")
        prev = event.previous_item_id
        if prev is None:
            index = len(self.items)
        elif prev == "root":
            index = 0
        else:
            index = next((n + 1 for n, i in enumerate(self.items) if i["id"] == prev), None)
            if index is None:
                raise SimError("invalid_value", f"Error adding item: the previous item with id '{prev}' "
                               "does not exist.", "previous_item_id")
        self.items.insert(index, item)
        if item.get("role") == "system" or (item.get("role") == "assistant" and item.get("type") == "message"):
            self.text_bias.add(item["id"])
        await self._item_added(item, self.items[index - 1]["id"] if index else None)

    def _check_new_item(self, item: dict[str, Any]) -> None:
        kind = item.get("type")
        if kind == "function_call_output":
            if not any(i.get("type") == "function_call" and i.get("call_id") == item.get("call_id") for i in self.items):
                raise SimError("invalid_value", f"No tool call found for function call output with call_id "
                               f"'{item.get('call_id')}'.", "item.call_id")
            if item.get("output") is None:
                raise SimError("missing_required_parameter", "Missing required parameter: 'item.output'.", "item.output")
            return
        if kind != "message":
            raise SimError("invalid_value", f"Invalid value: '{kind}'. Supported values are: 'message', "
                           "'function_call', and 'function_call_output'.", "item.type")
        allowed = {"user": {"input_text", "input_audio", "input_image"}, "system": {"input_text"},
                   "assistant": {"output_text", "text"}}.get(item.get("role") or "")
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

    def _find(self, item_id: str) -> dict[str, Any]:
        for item in self.items:
            if item["id"] == item_id:
                return item
        raise SimError("item_not_found", f"Item with item_id not found: {item_id}", "item_id")

    async def _on_conversation_item_delete(self, event: ev.ItemDelete) -> None:
        self.items.remove(self._find(event.item_id))
        self.text_bias.discard(event.item_id)
        await self.send(self._event(ev.ConversationItemDeleted, item_id=event.item_id))

    async def _on_conversation_item_retrieve(self, event: ev.ItemRetrieve) -> None:
        await self.send(self._event(ev.ConversationItemRetrieved, item=Item.from_dict(self._find(event.item_id))))

    async def _on_conversation_item_truncate(self, event: ev.ItemTruncate) -> None:
        item = self._find(event.item_id)
        audio = self.audio_of.get(event.item_id)
        if item.get("role") != "assistant" or audio is None:
            raise SimError("unsupported_content_type", "Only model output audio messages can be truncated")
        have_ms = len(audio) // BYTES_PER_MS
        if event.audio_end_ms > have_ms:
            raise SimError("invalid_value", f"Audio content of {have_ms}ms is already shorter than "
                           f"{event.audio_end_ms}ms", "audio_end_ms")
        del audio[event.audio_end_ms * BYTES_PER_MS:]
        for part in item.get("content") or ():
            if part.get("transcript"):
                words = part["transcript"].split()
                keep = round(len(words) * event.audio_end_ms / max(have_ms, 1))
                part["transcript"] = " ".join(words[:keep])
        await self.send(self._event(ev.ConversationItemTruncated, item_id=event.item_id,
                                    content_index=event.content_index, audio_end_ms=event.audio_end_ms))

    # ------------------------------------------------------------------------- responses
    async def _on_response_create(self, event: ev.ResponseCreate) -> None:
        if self.active:
            raise SimError("conversation_already_has_active_response",
                           f"Conversation already has an active response in progress: {self.active.id}. "
                           "Wait until the response is finished before creating a new one.")
        self._start_response(event.response or {})

    async def _on_response_cancel(self, event: ev.ResponseCancel) -> None:
        if not self.active or (event.response_id and event.response_id != self.active.id):
            raise SimError("response_cancel_not_active", "Cancellation failed: no active response found")
        await self.cancel_active("client_cancelled")

    async def cancel_active(self, reason: str) -> None:
        active = self.active
        if active is None or active.cancelled.is_set():
            return
        active.reason = reason
        active.cancelled.set()
        if active.task:
            await asyncio.shield(active.task)

    def _start_response(self, params: dict[str, Any]) -> None:
        active = _Active(id=self.ids("resp"))
        self.active = active
        active.task = asyncio.create_task(self._respond(active, params), name=f"sim-{active.id}")

    async def _respond(self, active: _Active, params: dict[str, Any]) -> None:
        try:
            await run_response(self, active, params)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("simulator response %s failed", active.id)
        finally:
            if self.active is active:
                self.active = None

    async def rate_limits(self) -> None:
        limits = [RateLimit(name="tokens", limit=15000000, remaining=14990000, reset_seconds=0.001)]
        if self.dialect is Dialect.BETA:
            limits.insert(0, RateLimit(name="requests", limit=5000, remaining=4999, reset_seconds=0.012))
        await self.send(self._event(ev.RateLimitsUpdated, rate_limits=limits))

    def response_model(self, active: _Active, status: str, output: list[dict[str, Any]],
                       modalities: list[str], usage: dict | None = None) -> Response:
        details = None
        if status == "cancelled":
            details = {"type": "cancelled", "reason": active.reason}
        return Response(id=active.id, object="realtime.response", status=status, status_details=details,
                        output=[Item.from_dict(o) for o in output], usage=usage,
                        conversation_id=None, output_modalities=modalities)

    def reply_modalities(self, params: dict[str, Any]) -> list[str]:
        mods = params.get("output_modalities") or params.get("modalities") or self.session["output_modalities"]
        audio = "audio" in mods
        if audio and self.quirks and self.text_bias and "instructions" not in params:
            logger.info("simulator: replayed text items in the conversation; replying in text only")
            audio = False
        return ["audio"] if audio else ["text"]

    def synthesize(self, text: str) -> Awaitable[bytes]:
        return asyncio.to_thread(synthesize, text)
