"""The conversation over GPT-Live, sans-I/O: events, microphone frames and time in, actions out.

Theory of operation (reference sections 4-8; the actions are those of :mod:`device.conversation`
plus :class:`OpenSession` / :class:`CloseSession`, which only the Live session manager knows).
One object per device, across sessions.

* **Uplink.** In the ``continuous`` turn mode every microphone frame comes here. While a session
  is open or asked for, each one becomes a ``session.input_audio.append`` in the outbox (the
  model needs the silence; its output is paced by the input). While none is, the last
  ``preroll_ms`` are kept in a ring, and :meth:`request` (the button, ``say``, the wake word,
  local speech) moves them into the outbox first, so the first words reach the next session.
* **Replies.** Live has no response or done events: a *stretch* of model speech starts with the
  first audio delta after a pause (``first_delta``, a made-up segment id for the speaker) and
  ends ``end_gap_s`` after the last one (``FinishPlayback``); ``reply_finished`` follows once the
  speaker drained. Transcript fragments go through :class:`~.transcripts.TranscriptGrouper`:
  finished turns are published (``heard`` / ``reply``) and kept in :class:`~.ondemand.ConversationMemory`,
  which the next ``session.start`` gets as ``input`` (within 128 messages / 8,192 tokens).
* **Talked over.** The model stops by itself (no cancel or truncate exists). When the person
  speaks over playback and no audio delta came for ``talk_over_gap_s``, the device flushes what
  it still holds; the button flushes at once and drops the rest of that stretch.
* **Tools** go through :class:`~.delegation.DelegationTracker`: a delegated ``function_call``
  becomes :class:`RunTool`; its output goes back as ``function_call_output`` + ``response.create``.
* **Connect on demand.** :class:`~.ondemand.IdleTimer` counts from the last speech either way,
  held while a delegated task runs or the speaker plays; when it is due, :meth:`tick` returns
  ``CloseSession("idle")``.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass

from ..audio.turns import Actions as TurnActions
from ..conversation import Action, FinishPlayback, NewConversation, Outbox, Play, Publish, RunTool, StopPlayback
from . import events as ev
from .delegation import DelegationTracker, ToolCall
from .models import AudioFormat, Delegation, SessionConfig
from .ondemand import ConversationMemory, IdleTimer
from .sessionstate import Counters, LiveSettings
from .transcripts import ASSISTANT, USER, TranscriptGrouper, Turn

logger = logging.getLogger(__name__)
BYTES_PER_MS = 48  # 24 kHz mono PCM16, the session format the device asks for
#: ``say`` on Live: a typed turn as silent context the model answers (README "GPT-Live on the device").
TYPED_TURN = "The person typed this instead of saying it; answer it out loud: "


@dataclass(frozen=True)
class OpenSession:
    """Open a session now if none is open (why: button, say, speech, wake_word)."""
    reason: str


@dataclass(frozen=True)
class CloseSession:
    """Close the open session (``session.close``): idle, or a new conversation."""
    reason: str


LiveAction = Action | OpenSession | CloseSession
__all__ = ["CloseSession", "Counters", "LiveAction", "LiveConversation", "LiveSettings", "OpenSession"]


class LiveConversation:
    def __init__(self, *, idle_close_s: float = 30.0, preroll_ms: int = 600, max_queue_ms: int = 15_000,
                 frame_ms: int = 20, end_gap_s: float = 0.6, talk_over_gap_s: float = 0.3,
                 open_on_speech: bool = True) -> None:
        self.frame_ms = frame_ms
        self.end_gap_s = end_gap_s
        self.talk_over_gap_s = talk_over_gap_s
        self.open_on_speech = open_on_speech
        self.outbox = Outbox(max_audio=max(1, max_queue_ms // frame_ms),
                             is_audio=lambda e: isinstance(e, ev.InputAudioAppend))
        self.stats = Counters()
        self.memory = ConversationMemory()
        self.idle_timer = IdleTimer(idle_close_s)
        self.tracker = DelegationTracker()
        self.grouper = TranscriptGrouper()
        self.session_id: str | None = None
        self.muted = False
        self.requested = False                    # a session is open or asked for: audio goes up
        self._ring: deque[bytes] = deque(maxlen=max(1, preroll_ms // frame_ms))
        self._timeline_ms = 0                     # input audio queued in this session
        self._segment = 0
        self._stretch: str | None = None          # the segment id of the model speech going on
        self._last_delta = 0.0
        self._ignore_stretch = False              # the button stopped it: drop the rest
        self._playing = False
        self._talked_over_at: float | None = None
        self._user_talking = False
        self._tools: dict[str, ToolCall] = {}
        self._end_after_reply = False
        self._typed: list[Turn] = []              # said with `say`: remembered once the session has it
        self._task_done_at: float | None = None   # a delegated task ended in silence (so far)

    # ---------------------------------------------------------------- sessions
    def session_config(self, settings: LiveSettings, *, fresh: bool) -> SessionConfig:
        """``session.start`` for the next session: the conversation so far as ``input``."""
        if fresh:
            self.forget()
        delegation = (Delegation.responses_with(settings.delegation_model, settings.tools)
                      if settings.tools else None)
        return SessionConfig.build(model=settings.model, instructions=settings.instructions, voice=settings.voice,
                                   audio_format=AudioFormat(), history=self.memory.history(), delegation=delegation)

    def request(self, now: float) -> bool:
        """A session is wanted: audio from here (and the pre-roll) goes up. True if it was not already."""
        if self.requested:
            return False
        self.requested = True
        for frame in self._ring:
            self._append(frame)
        self._ring.clear()
        self.idle_timer.activity(now)
        return True

    def begin_session(self, *, session_id: str, fresh: bool, now: float) -> list[ev.LiveClientEvent]:
        self.session_id = session_id
        self.requested = True
        self._timeline_ms = self.outbox.audio_frames * self.frame_ms   # the queued audio comes first
        self.grouper = TranscriptGrouper()
        self.idle_timer.start(now)
        if self._user_talking:
            self.idle_timer.hold("speech")
        if self._playing:
            self.idle_timer.hold("playback")
        return [ev.InputAudioMute()] if self.muted else []

    def end_session(self, *, lost: bool, now: float, reopen: bool = False) -> list[LiveAction]:
        """The session is over. Every word heard so far goes into the memory; with ``reopen``
        (expired, link lost) the audio still queued waits for the next session."""
        out = self._turns_done(self.grouper.flush())
        self.tracker.reset()
        self._tools.clear()
        self.session_id = None
        self.idle_timer.stop()
        self._talked_over_at = None
        if not reopen:
            self.requested = False
        kept = [e for e in self.outbox if reopen and isinstance(e, (ev.InputAudioAppend, ev.ThinkingAppend))]
        while self.outbox:   # tool outputs, mute: meant for the old session only
            self.outbox.pop()
        for event in kept:   # the person's words (and typed turns) go to the next one
            self.outbox.put(event)
        return out

    def new_conversation(self) -> None:
        self.forget()
        self.outbox.drop_audio()
        self._end_after_reply = False

    def forget(self) -> None:
        self.memory.forget()
        self.grouper = TranscriptGrouper()

    def end_after_reply(self) -> None:
        self._end_after_reply = True

    @property
    def open(self) -> bool:
        return self.session_id is not None

    @property
    def idle(self) -> bool:
        return (not self._playing and self._stretch is None and not self._tools and not self._user_talking
                and not self.tracker.running)

    def counters(self) -> dict[str, int]:
        return dict(self.stats.__dict__, dropped_uplink_frames=self.outbox.dropped_audio,
                    remembered_turns=len(self.memory))

    # ----------------------------------------------------------------- uplink
    def _append(self, frame: bytes) -> None:
        self.outbox.put(ev.InputAudioAppend.from_audio(frame))
        self.stats.appends += 1
        self.stats.bytes_up += len(frame)
        if self.open:
            self._timeline_ms += len(frame) // BYTES_PER_MS

    def turn(self, actions: TurnActions, now: float) -> list[LiveAction]:
        """Every frame goes up while a session is open or asked for; commit/clear/respond mean nothing here."""
        for frame in actions.send:
            if self.muted:
                self.stats.muted_frames += 1
            if self.requested:
                self._append(frame)
            else:
                self._ring.append(frame)
        out: list[LiveAction] = []
        if actions.speech_started:
            self._user_talking = True
            self.idle_timer.hold("speech")   # however long the person talks
            out.append(Publish("speech_started", {"source": "device"}))
            if self._playing:
                self._talked_over_at = now
            if self.open_on_speech:   # a no-op while one is open; it matters while one closes
                out.append(OpenSession("speech"))
        if actions.speech_ended:
            self._user_talking = False
            self.idle_timer.release("speech", now)
            out.append(Publish("speech_ended", {"committed": False}))
        return out

    def set_muted(self, muted: bool) -> None:
        if muted != self.muted and self.open:
            self.outbox.put(ev.InputAudioMute() if muted else ev.InputAudioUnmute())
        self.muted = muted

    def say(self, text: str, now: float) -> list[LiveAction]:
        """A typed turn: silent context the model answers out loud (there is no user text item)."""
        self.outbox.put(ev.ThinkingAppend.general(TYPED_TURN + text[:1500]))
        self._typed.append(Turn(USER, text, self._timeline_ms, self._timeline_ms))   # no transcript comes for it
        self.idle_timer.activity(now)
        return [Publish("say", {"text": text}), OpenSession("say")]

    # ---------------------------------------------------------------- downlink
    def server_event(self, event: ev.LiveServerEvent, now: float) -> list[LiveAction]:
        out: list[LiveAction] = []
        if isinstance(event, ev.OutputAudioDelta):
            out = self._on_audio(event, now)
        elif isinstance(event, ev.InputTranscriptDelta):
            out = self._on_transcript(USER, event, now)
        elif isinstance(event, ev.OutputTranscriptDelta):
            out = self._on_transcript(ASSISTANT, event, now)
        elif isinstance(event, (ev.DelegationCreated, ev.ResponseEvent)):
            out = self._on_delegation(event, now)
        elif isinstance(event, ev.UsageUpdated):
            ratio = event.context_window.usage_ratio if event.context_window else None
            out = [Publish("usage", {"seconds": event.usage.seconds, "context_ratio": ratio})]
        elif isinstance(event, ev.SessionClosed):
            out = [Publish("session_closed", {"reason": event.reason,
                                              "seconds": event.usage.seconds if event.usage else None})]
        elif isinstance(event, ev.LiveErrorEvent):
            out = [Publish("error", {"code": event.code or "error", "error": event.error.message[:300],
                                     "fatal": False})]
        return out

    def _on_audio(self, event: ev.OutputAudioDelta, now: float) -> list[LiveAction]:
        pcm = event.audio
        pcm = pcm[:-1] if len(pcm) % 2 else pcm   # half a sample cannot be played
        if self._stretch is not None and now - self._last_delta > self.end_gap_s:
            self._stretch_over()   # a late tick: this is a new stretch
        self._last_delta = now
        self.idle_timer.activity(now)
        if self._ignore_stretch or not pcm:
            return []
        out: list[LiveAction] = []
        self._task_done_at = None
        if self._stretch is None:
            self._segment += 1
            self._stretch = f"live_{self.session_id or 'x'}_{self._segment}"
            out.append(Publish("first_delta", {"response_id": None, "item_id": self._stretch}))
        self._playing = True
        self.stats.bytes_down += len(pcm)
        self.idle_timer.hold("playback")
        out.append(Play(self._stretch, pcm))
        return out

    def _on_transcript(self, role: str, event: ev.InputTranscriptDelta | ev.OutputTranscriptDelta,
                       now: float) -> list[LiveAction]:
        self.idle_timer.activity(now)
        if role == USER:
            # The input clock is the one the device knows; output times run ahead of it while
            # the model's audio comes faster than real time, so they do not move it.
            self._timeline_ms = max(self._timeline_ms, event.end_ms)
        return self._turns_done(self.grouper.add(role, event.delta, event.start_ms, event.end_ms))

    def _turns_done(self, turns: list[Turn]) -> list[LiveAction]:
        self.memory.add(turns)
        out: list[LiveAction] = []
        for turn in turns:
            if turn.role == USER:
                self.stats.turns += 1
                out.append(Publish("heard", {"item_id": None, "text": turn.text, "backchannel": turn.backchannel}))
            else:
                self.stats.replies += 1
                out.append(Publish("reply", {"response_id": None, "status": "interrupted" if turn.interrupted
                                             else "completed", "audio": True, "text": turn.text[:300],
                                             "tools": [], "preamble": None, "phases": []}))
        return out

    def _on_delegation(self, event: ev.DelegationCreated | ev.ResponseEvent, now: float) -> list[LiveAction]:
        was_running = self.tracker.running
        out: list[LiveAction] = []
        if isinstance(event, ev.DelegationCreated):
            self.stats.delegations += 1
            out.append(Publish("response_started", {"response_id": event.delegation.response_id,
                                                    "delegation_id": event.delegation.id}))
        for call in self.tracker.on_event(event):
            self._tools[call.call_id] = call
            self.stats.tool_calls += 1
            out.append(Publish("tool", {"name": call.name, "arguments": call.arguments[:300],
                                        "call_id": call.call_id}))
            out.append(RunTool(call.call_id, call.name, call.arguments))
        if self.tracker.running:
            self.idle_timer.hold("delegation")
        elif was_running:
            self.idle_timer.release("delegation", now)
            if not self._playing and self._stretch is None:
                self._task_done_at = now   # its result is usually spoken: wait for it a little
        return out

    # ------------------------------------------------------------- the speaker
    def playback_started(self, item_id: str, now: float) -> list[LiveAction]:
        return [Publish("playback_started", {"item_id": item_id, "response_id": None})]

    def playback_drained(self, now: float) -> list[LiveAction]:
        self._playing = False
        self._talked_over_at = None
        self.idle_timer.release("playback", now)
        if self._stretch is not None:
            return []   # more of this stretch may come: it ends with the gap (tick)
        return self._finished()

    def _finished(self) -> list[LiveAction]:
        # The stretch played out: the model's turn is over (its text first, then reply_finished,
        # so `pivoice say` prints the answer before it stops following).
        out = self._turns_done(self.grouper.close(ASSISTANT))
        if self.tracker.running:   # "one moment": the answer comes when the delegated task is done
            out.append(Publish("delegation_running", {}))
            return out
        out.append(Publish("reply_finished", {"response_id": None}))
        if self._end_after_reply and not self.tracker.running:
            self._end_after_reply = False
            out.append(NewConversation())
        return out

    def barge_in(self, cause: str, played_ms: dict[str, int], now: float) -> list[LiveAction]:
        """Playback was flushed; Live has nothing to truncate or cancel (reference section 4)."""
        self._playing = False
        self._talked_over_at = None
        self.idle_timer.release("playback", now)
        if cause == "link_lost":
            return []
        self.stats.barge_ins += 1
        if self._stretch is not None and cause != "voice":
            self._ignore_stretch = True   # the model goes on talking: the rest of it is not played
        logger.info("barge-in (%s): playback flushed locally", cause)
        out: list[LiveAction] = [Publish("barge_in", {"cause": cause, "item_id": self._stretch,
                                                      "audio_end_ms": played_ms.get(self._stretch or "")})]
        if cause != "voice":
            out.append(Publish("reply_finished", {"response_id": None, "interrupted": True}))
        return out

    # ------------------------------------------------------------------ tools
    def tool_finished(self, call_id: str, output: str, outcome: str, now: float) -> list[LiveAction]:
        call = self._tools.pop(call_id, None)
        if call is None:
            return []   # its session is gone
        for event in self.tracker.result(call, output):
            self.outbox.put(event)
        return [Publish("tool_result", {"name": call.name, "output": output[:300], "outcome": outcome})]

    # --------------------------------------------------------------- deadlines
    def tick(self, now: float) -> list[LiveAction]:
        out: list[LiveAction] = []
        if self.open:
            self.memory.add(self._typed)
            self._typed.clear()
            out += self._turns_done(self.grouper.flush_until(self._timeline_ms))
        if self._stretch is not None and now - self._last_delta > self.end_gap_s:
            out += self._stretch_over()
        if self._task_done_at is not None and now - self._task_done_at > self.end_gap_s * 5:
            self._task_done_at = None   # the task ended and nothing was said of it
            out.append(Publish("reply_finished", {"response_id": None, "delegation": True}))
        talked = self._talked_over_at
        if talked is not None and self._playing and now - max(talked, self._last_delta) >= self.talk_over_gap_s:
            # The person talks and the model's audio stopped: it yielded; flush what is queued.
            self._talked_over_at = None
            out.append(StopPlayback("voice"))
        if self.open and self.idle_timer.due(now):
            self.stats.idle_closes += 1
            self.idle_timer.stop()
            out.append(CloseSession("idle"))
        return out

    def _stretch_over(self) -> list[LiveAction]:
        self._stretch = None
        ignored, self._ignore_stretch = self._ignore_stretch, False
        if ignored:
            return []
        return [FinishPlayback()] if self._playing else self._finished()
