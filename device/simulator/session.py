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
from typing import Any

from ..realtime import events as ev
from ..realtime.dialect import Dialect
from ..realtime.models import ErrorDetail, Item
from . import replies
from .config import SimError, apply_update, default_session, render_session
from .items import check_new_item, insert_index, truncate_item
from .respond import Active, announce, run_response
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
        self.idle_items: set[str] = set()           # user items an idle timeout committed
        self.input = bytearray()
        self.input_start_ms = 0                     # session audio position of input[0]
        self.audio_ms = 0                           # all audio appended this session
        self.active: Active | None = None
        self.counts = {"responses": 0, "cancelled": 0}
        self._speech_item: str | None = None
        self._speech_start_ms = 0
        self._idle_at_ms: int | None = None         # audio position of the next idle timeout
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
        turn: dict[str, Any] | None = self.session["audio"]["input"]["turn_detection"]
        return turn

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
        if self._idle_at_ms is not None and self.audio_ms >= self._idle_at_ms and not self._vad.in_speech:
            await self._idle_timeout()

    def _arm_idle_timeout(self, finished: Active) -> None:
        """``idle_timeout_ms`` counts from when the reply's audio has finished playing, taken
        as the audio position at ``response.done`` plus the reply's length (section 4)."""
        timeout = (self.turn_detection or {}).get("idle_timeout_ms")
        if timeout and self.turn_detection and self.turn_detection.get("type") == "server_vad" and not self.active:
            self._idle_at_ms = self.audio_ms + finished.audio_ms + int(timeout)

    async def _idle_timeout(self) -> None:
        """No speech for ``idle_timeout_ms``: say so, commit the silence and answer it (section 4)."""
        self._idle_at_ms = None
        item_id = self.ids("item")
        await self.send(self._event(ev.InputAudioTimeout, audio_start_ms=self.input_start_ms,
                                    audio_end_ms=self.audio_ms, item_id=item_id))
        segment = bytes(self.input)
        self.input.clear()
        self.input_start_ms = self.audio_ms
        self.idle_items.add(item_id)
        await self._commit(item_id, segment)
        if not self.active:
            await self._start_response({})

    async def _speech_started(self, start_ms: int) -> None:
        self._speech_item = self.ids("item")
        self._speech_start_ms = max(start_ms, self.input_start_ms)
        self._idle_at_ms = None
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
            await self._start_response({})

    async def _on_input_audio_buffer_commit(self, event: ev.InputAudioCommit) -> None:
        have_ms = len(self.input) / BYTES_PER_MS
        if have_ms < 100:
            raise SimError("input_audio_buffer_commit_empty",
                           "Error committing input audio buffer: buffer too small. Expected at least 100ms "
                           f"of audio, but buffer only has {have_ms:.2f}ms of audio.")
        segment = bytes(self.input)
        self.input.clear()
        self.input_start_ms = self.audio_ms
        item_id = self.ids("item")
        if self._vad is not None and self._vad.in_speech:
            # The reference is silent on a commit while the VAD hears speech; taken here as
            # ending that speech with the buffer (its item; the VAD starts afresh, no second commit).
            self._vad.reset()
            item_id, self._speech_item = self._speech_item or item_id, None
        await self._commit(item_id, segment)

    async def _on_input_audio_buffer_clear(self, event: ev.InputAudioClear) -> None:
        self.input.clear()
        self.input_start_ms = self.audio_ms
        await self.send(self._event(ev.InputAudioCleared))

    async def _commit(self, item_id: str, pcm: bytes) -> None:
        previous = self.items[-1]["id"] if self.items else None
        item: dict[str, Any] = {"id": item_id, "object": "realtime.item", "type": "message", "status": "completed",
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
        check_new_item(item, self.items)
        item.setdefault("id", self.ids("item"))
        item.update(object="realtime.item", status="completed")
        if any(i["id"] == item["id"] for i in self.items):
            raise SimError("invalid_value", f"Item with id '{item['id']}' already exists.", "item.id")
        index = insert_index(self.items, event.previous_item_id)
        self.items.insert(index, item)
        if item.get("role") == "system" or (item.get("role") == "assistant" and item.get("type") == "message"):
            self.text_bias.add(item["id"])
        await self._item_added(item, self.items[index - 1]["id"] if index else None)

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
        truncate_item(self._find(event.item_id), self.audio_of.get(event.item_id), event.audio_end_ms, BYTES_PER_MS)
        await self.send(self._event(ev.ConversationItemTruncated, item_id=event.item_id,
                                    content_index=event.content_index, audio_end_ms=event.audio_end_ms))

    # ------------------------------------------------------------------------- responses
    async def _on_response_create(self, event: ev.ResponseCreate) -> None:
        if self.active:
            raise SimError("conversation_already_has_active_response",
                           f"Conversation already has an active response in progress: {self.active.id}. "
                           "Wait until the response is finished before creating a new one.")
        await self._start_response(event.response or {})

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

    async def _start_response(self, params: dict[str, Any]) -> None:
        active = Active(id=self.ids("resp"), params=params)
        self.active = active
        self._idle_at_ms = None
        await announce(self, active)
        active.task = asyncio.create_task(self._respond(active), name=f"sim-{active.id}")

    async def _respond(self, active: Active) -> None:
        try:
            await run_response(self, active)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("simulator response %s failed", active.id)
        finally:
            if self.active is active:
                self.active = None
            self._arm_idle_timeout(active)

    def synthesize(self, text: str) -> Awaitable[bytes]:
        return asyncio.to_thread(synthesize, text)
