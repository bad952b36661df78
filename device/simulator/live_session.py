"""One simulated GPT-Live session: session.start, audio in, transcripts and speech out, mute, appends.

Theory of operation: the server loop hands every parsed client event to :meth:`handle`, in
order; everything the session says goes out through the ``emit`` coroutine, so the session
never touches a socket. Time is the input audio (reference section 5, INFER: "output progress
appears to be paced by the input stream"): the session timeline is the milliseconds of audio
appended, and every millisecond appended lets ``speedup`` milliseconds of reply audio out.
A client that stops streaming therefore also stops the reply, as the SDK example warns, and
the tests are exact without sleeping.

Full duplex (section 4): the energy VAD listens while the model speaks; speech from the person
stops the model's audio at once (it says nothing more of that reply), and the new words get
their own reply. Delegated tool work lives in :mod:`.live_delegation`.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from ..live import events as ev
from ..live.models import AudioFormat, LiveErrorDetail, SessionResource
from ..live.validate import RequestError, check_audio
from . import replies
from .live_audio import from_work, to_work
from .session import Ids
from .vad import EnergyVad, VadStart
from .voice import synthesize

logger = logging.getLogger(__name__)
BYTES_PER_MS = 48  # the 24 kHz PCM16 the simulator works in
CHUNK_MS = 100
DEFAULT_INSTRUCTIONS = "You are a helpful voice assistant on a small device. Keep answers short."


@dataclass
class LiveSimOptions:
    """The simulator's choices; those the reference leaves open are listed in README.md."""

    models: tuple[str, ...] = ("gpt-live-1", "gpt-live-1.1")
    #: Session limit in seconds: NOT FOUND in the reference, so a choice (default one hour).
    session_limit_s: float = 3600.0
    #: Accepted keys; empty accepts any non-empty key.
    api_keys: frozenset[str] = frozenset()
    #: "http": a bad key gets HTTP 401 on the upgrade; "in_band": error invalid_api_key, then close.
    bad_key: str = "http"
    #: Close code after an admission error (bad key in band, refused model): final per the SDK.
    refusal_close_code: int = 1008
    #: Milliseconds of reply audio released per millisecond of input audio received.
    speedup: float = 4.0
    #: Input milliseconds between the end of speech and the first reply audio.
    reply_delay_ms: int = 200
    vad_threshold: float = 0.5
    silence_ms: int = 500
    #: ``session.usage.updated`` period in wall-clock seconds (the service: about a minute).
    usage_interval_s: float = 60.0
    #: What the model says when it delegates a task ("" says nothing).
    delegation_ack: str = "One moment."
    #: Put start_ms/end_ms on output audio deltas (Azure's examples do; the SDK says omitted).
    audio_delta_timing: bool = False
    #: Context window in tokens, for ``context_window.usage_ratio`` (NOT FOUND).
    context_tokens: int = 32000
    ping_interval_s: float | None = 20.0
    #: Answer a general ``session.thinking.append`` that carries the device's typed turn
    #: (``pivoice say`` on Live) as if the person had said it.
    answer_typed: bool = True
    seed: int | None = None


@dataclass
class _Utterance:
    text: str
    pcm: bytes
    sent: int = 0
    said: int = 0
    words: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.words = self.text.split()


_RECOGNISER = threading.Lock()


def _transcribe(pcm: bytes) -> str | None:
    # One pocketsphinx decoder serves the process; sessions (and a session ended while its
    # transcription was still running) must not use it at the same time.
    with _RECOGNISER:
        return replies.transcribe(pcm)


class LiveSimSession:
    def __init__(self, emit: Callable[[ev.LiveServerEvent], Awaitable[None]], *, options: LiveSimOptions,
                 ids: Ids, expires_at: int, elapsed_s: Callable[[], float]) -> None:
        self._emit = emit
        #: Connected seconds so far (wall clock, from the server): what usage counts.
        self.elapsed_s = elapsed_s
        self.options = options
        self.ids = ids
        self.expires_at = expires_at
        self.state = "new"                 # new -> active -> closed; new -> refused
        self.session: dict[str, Any] = {}
        self.format = AudioFormat()
        self.items: list[dict[str, Any]] = []   # the conversation, in the GA item shape replies.py reads
        self.clock_ms = 0
        self.muted = False
        self.counts = {"replies": 0, "talked_over": 0, "delegations": 0}
        self._queue: deque[_Utterance] = deque()
        self._delay_ms = 0
        self._budget_ms = 0.0
        self._out_ms = 0
        self._vad = EnergyVad(threshold=options.vad_threshold, silence_duration_ms=options.silence_ms)
        self._input = bytearray()
        self._input_start_ms = 0
        self._onset_ms = 0
        from .live_delegation import Delegations  # a cycle on purpose: it calls back into speak()
        self.delegations = Delegations(self)

    # ------------------------------------------------------------------------- plumbing
    async def send(self, event: ev.LiveServerEvent) -> None:
        if self.state == "closed":
            return  # nothing follows session.closed (a transcription may finish after expiry)
        await self._emit(event)

    def event(self, cls: type, **kwargs: Any) -> Any:
        return cls(event_id=self.ids("event"), **kwargs)

    async def error(self, err: RequestError, client_event_id: str | None = None) -> None:
        detail = LiveErrorDetail(type="invalid_request_error", code=err.code, message=err.message,
                                 param=err.param, client_event_id=client_event_id)
        await self.send(self.event(ev.LiveErrorEvent, error=detail, client_event_id=client_event_id))

    def resource(self) -> SessionResource:
        return SessionResource.from_dict(self.session)

    @property
    def delegation_type(self) -> str:
        kind: str = (self.session.get("delegation") or {}).get("type", "client")
        return kind

    def tools(self) -> list[dict[str, Any]]:
        if self.delegation_type != "responses":
            return []
        tools = (self.session["delegation"].get("responses") or {}).get("tools") or []
        return [t for t in tools if t.get("type") == "function"]

    # -------------------------------------------------------------------------- dispatch
    async def handle(self, event: ev.LiveClientEvent) -> None:
        try:
            if self.state == "new" and not isinstance(event, ev.SessionStart):
                raise RequestError("session_not_started", f"Send session.start before {event.type}.", "type")
            if self.state in ("closed", "refused"):
                raise RequestError("session_closing", f"The session is closing; {event.type} was not applied.")
            await getattr(self, "_on_" + event.TYPE.replace(".", "_"))(event)
        except RequestError as err:
            await self.error(err, event.event_id)

    async def _on_session_start(self, event: ev.SessionStart) -> None:
        """Answer a ``session.start`` the protocol core has already checked strictly."""
        if self.state != "new":
            raise RequestError("session_already_started", "session.start may be sent only once.", "type")
        raw = event.session.to_dict()
        if raw["model"] not in self.options.models:
            # An admission error replaces session.started (section 9); the server then closes.
            self.state = "refused"
            raise RequestError("model_not_found", f"The model '{raw['model']}' does not exist or you do not "
                               "have access to it. Inspect your model access and configuration.", "session.model")
        audio = raw.get("audio") or {}
        fmt = dict(audio.get("format") or {"type": "audio/pcm", "rate": 24000})
        fmt.setdefault("rate", 8000 if fmt["type"] != "audio/pcm" else 24000)
        self.format = AudioFormat(type=fmt["type"], rate=fmt["rate"])
        self.session = {
            "id": self.ids("sess"), "model": raw["model"], "status": "active", "expires_at": self.expires_at,
            "instructions": (raw.get("instructions") or "").strip() or DEFAULT_INSTRUCTIONS,
            "audio": {"format": fmt, "output": {"voice": (audio.get("output") or {}).get("voice") or "marin"}},
            "delegation": raw.get("delegation") or {"type": "client"}, "store": bool(raw.get("store", False)),
        }
        if raw.get("input"):
            self.session["input"] = raw["input"]
            for message in raw["input"]:
                role = "system" if message["role"] == "developer" else message["role"]
                self.items.append({"type": "message", "role": role, "content": message["content"]})
        self.state = "active"
        await self.send(self.event(ev.SessionStarted, session=self.resource(), client_event_id=event.event_id))

    async def _on_session_update(self, event: ev.SessionUpdate) -> None:
        new = event.session.get("delegation")
        if new is not None:
            if new.get("type") != self.delegation_type:
                raise RequestError("invalid_value", "The delegation type of a session cannot change.",
                                   "session.delegation.type")
            self.session["delegation"] = new
        await self.send(self.event(ev.SessionUpdated, session=self.resource(), client_event_id=event.event_id))

    async def _on_session_input_audio_mute(self, event: ev.InputAudioMute) -> None:
        self.muted = True
        await self.send(self.event(ev.InputAudioMuted, client_event_id=event.event_id))

    async def _on_session_input_audio_unmute(self, event: ev.InputAudioUnmute) -> None:
        self.muted = False
        await self.send(self.event(ev.InputAudioUnmuted, client_event_id=event.event_id))

    async def _on_session_close(self, event: ev.SessionClose) -> None:
        """Stop new work, then ``session.closed``; the server closes the socket after it."""
        await self.closed("close_requested", self.elapsed_s(), event.event_id)

    async def _on_response_item_create(self, event: ev.ResponseItemCreate) -> None:
        await self.delegations.item_create(event)

    async def _on_response_create(self, event: ev.ResponseCreate) -> None:
        await self.delegations.response_create(event)

    # ---------------------------------------------------------------------------- appends
    async def _appended(self, event: ev.InstructionsAppend | ev.ThinkingAppend | ev.CommentaryAppend,
                        ack: type) -> None:
        if event.delegation_id is not None and not self.delegations.accepts_append(event.delegation_id):
            raise RequestError("invalid_value", f"Unknown or closed delegation '{event.delegation_id}'.",
                               "delegation_id")
        await self.send(self.event(ack, start_ms=self.clock_ms, end_ms=self.clock_ms, client_event_id=event.event_id))

    async def _on_session_instructions_append(self, event: ev.InstructionsAppend) -> None:
        await self._appended(event, ev.InstructionsAppended)
        self.session["instructions"] += "\n" + event.content

    async def _on_session_thinking_append(self, event: ev.ThinkingAppend) -> None:
        await self._appended(event, ev.ThinkingAppended)
        from ..live.conversation import TYPED_TURN
        if self.options.answer_typed and event.delegation_id is None and event.content.startswith(TYPED_TURN):
            await self._answer({"type": "input_text", "text": event.content[len(TYPED_TURN):]})
            return
        self.items.append({"type": "message", "role": "system", "content": [{"type": "input_text",
                                                                             "text": event.content}]})

    async def _on_session_commentary_append(self, event: ev.CommentaryAppend) -> None:
        await self._appended(event, ev.CommentaryAppended)
        await self.speak(event.content)

    # ------------------------------------------------------------------------------ audio in
    async def _on_session_input_audio_append(self, event: ev.InputAudioAppend) -> None:
        data = check_audio(event.audio)
        if self.format.type == "audio/pcm" and len(data) % 2:
            raise RequestError("invalid_audio", "PCM16 audio must contain an even number of bytes", "audio")
        work = to_work(data, self.format.type, self.format.rate)
        if self.muted:
            work = bytes(len(work))  # muted: time passes, the model hears nothing (section 4)
        ms = len(work) // BYTES_PER_MS
        self.clock_ms += ms
        self._input += work
        for mark in self._vad.feed(work):
            if isinstance(mark, VadStart):
                await self._speech_started(mark.audio_start_ms)
            else:
                await self._speech_stopped(mark.audio_end_ms)
        if not self._vad.in_speech:
            self._trim_input(keep_ms=500)
        await self._advance(ms)

    def _trim_input(self, *, keep_ms: int) -> None:
        excess = len(self._input) - keep_ms * BYTES_PER_MS
        if excess > 0:
            del self._input[:excess]
            self._input_start_ms += excess // BYTES_PER_MS

    async def _speech_started(self, start_ms: int) -> None:
        start_ms = max(start_ms, self._input_start_ms)
        self._trim_input(keep_ms=self.clock_ms - start_ms)
        # The transcript is timed from the onset, not from the VAD's padded segment start.
        self._onset_ms = max(start_ms, min(start_ms + self._vad.prefix_padding_ms, self.clock_ms))
        if self._queue:
            self.counts["talked_over"] += 1
            logger.info("live simulator: talked over at %d ms; the model stops speaking", start_ms)
            self.stop_speaking()

    async def _speech_stopped(self, end_ms: int) -> None:
        start_ms = self._input_start_ms
        cut = max(0, (end_ms - start_ms) * BYTES_PER_MS)
        onset = max(start_ms, self._onset_ms)
        segment = bytes(self._input[:cut])
        del self._input[:cut]
        self._input_start_ms = end_ms
        transcript = await asyncio.to_thread(_transcribe, segment)
        words = (transcript or "").split()
        for n, word in enumerate(words):
            span = (end_ms - onset) / len(words)
            await self.send(self.event(ev.InputTranscriptDelta, delta=(" " if n else "") + word,
                                       start_ms=int(onset + n * span), end_ms=int(onset + (n + 1) * span)))
        await self._answer({"type": "input_text", "text": " ".join(words)}, heard_s=len(segment) / BYTES_PER_MS / 1000)

    async def _answer(self, part: dict[str, Any], heard_s: float = 0.0) -> None:
        """The person's turn (``part``) joins the conversation; the model answers or delegates."""
        self.items.append({"type": "message", "role": "user", "content": [part]})
        reply = replies.decide(self.items, self.tools(), heard_s=heard_s)
        self.counts["replies"] += 1
        if reply.calls:
            await self.delegations.delegate(reply.calls[0])
        else:
            await self.speak(reply.text or "")

    # ----------------------------------------------------------------------------- speech out
    async def speak(self, text: str) -> None:
        """Queue ``text``; it goes out as the input clock advances (see the module docstring)."""
        if not text.strip():
            return
        pcm = await asyncio.to_thread(synthesize, text)
        if not self._queue:
            self._delay_ms = self.options.reply_delay_ms
        self._queue.append(_Utterance(text=text, pcm=pcm))

    def stop_speaking(self) -> None:
        """The model stops by itself: what was said stays in the conversation, the rest is dropped."""
        while self._queue:
            self._finish(self._queue.popleft())
        self._budget_ms = 0.0

    def _finish(self, utterance: _Utterance) -> None:
        said = " ".join(utterance.words[:utterance.said])
        if said:
            self.items.append({"type": "message", "role": "assistant",
                               "content": [{"type": "output_text", "text": said}]})

    async def _advance(self, input_ms: int) -> None:
        if not self._queue:
            return
        wait = min(self._delay_ms, input_ms)
        self._delay_ms -= wait
        self._budget_ms += (input_ms - wait) * self.options.speedup
        while self._queue:
            utterance = self._queue[0]
            chunk = utterance.pcm[utterance.sent:utterance.sent + CHUNK_MS * BYTES_PER_MS]
            chunk_ms = len(chunk) / BYTES_PER_MS
            if chunk_ms > self._budget_ms:
                break
            self._budget_ms -= chunk_ms
            await self._send_chunk(utterance, chunk)
            if utterance.sent >= len(utterance.pcm):
                self._finish(self._queue.popleft())
        if not self._queue:
            self._budget_ms = 0.0

    async def _send_chunk(self, utterance: _Utterance, chunk: bytes) -> None:
        start = max(self._out_ms, self.clock_ms)
        end = start + len(chunk) // BYTES_PER_MS
        utterance.sent += len(chunk)
        upto = round(len(utterance.words) * utterance.sent / max(len(utterance.pcm), 1))
        if upto > utterance.said:
            delta = " ".join(utterance.words[utterance.said:upto])
            await self.send(self.event(ev.OutputTranscriptDelta, delta=(" " if utterance.said else "") + delta,
                                       start_ms=start, end_ms=end))
            utterance.said = upto
        timing = {"start_ms": start, "end_ms": end} if self.options.audio_delta_timing else {}
        # No event_id on audio deltas (reference section 3b).
        await self.send(ev.OutputAudioDelta.from_audio(from_work(chunk, self.format.type, self.format.rate), **timing))
        self._out_ms = end

    @property
    def speaking(self) -> bool:
        return bool(self._queue)

    # ------------------------------------------------------------------------- lifecycle
    def context_ratio(self) -> float:
        words = sum(len(str(p.get("text", "")).split()) for i in self.items for p in i.get("content") or ())
        return round(min(1.0, (words * 4 / 3 + 200) / self.options.context_tokens), 4)

    async def usage(self, seconds: float) -> None:
        from ..live.models import ContextWindow, Usage
        await self.send(self.event(ev.UsageUpdated, usage=Usage(seconds=seconds),
                                   context_window=ContextWindow(usage_ratio=self.context_ratio())))

    async def closed(self, reason: str, seconds: float, client_event_id: str | None = None) -> None:
        from ..live.models import Usage
        self.stop_speaking()
        self.delegations.cancel_all()
        if self.state == "active":
            await self.send(self.event(ev.SessionClosed, reason=reason, session=self.resource(),
                                       usage=Usage(seconds=seconds), client_event_id=client_event_id))
        self.state = "closed"
