"""The conversation over the Realtime API, sans-I/O: events and audio facts in, actions out.

Theory of operation (reference sections 5 and 6; see :mod:`device.conversation` for the
actions). One object per device, across sessions; per session it forgets what only that
session knew (``end_session``).

* **Uplink.** The pipeline's turn decisions become ``input_audio_buffer.append / commit /
  clear`` and ``response.create`` in the outbox (bounded: 2 s of audio while the link is down).
* **Replies.** ``response.created`` makes a response active. Its audio deltas are played item
  by item, in order; ``response.output_audio.done`` lets the speaker play out the item's tail.
  A reply is over when the server said ``response.done`` *and* the speaker drained (or it was
  interrupted): then ``reply_finished``. One without news for ``reply_timeout_s`` is given up.
* **Barge-in.** Whoever stopped playback (the local VAD, the button, the server's VAD), the
  item that was playing is truncated at the milliseconds the speaker got, clamped to what was
  received (field notes item 12); items not yet heard are not truncated. The response is
  cancelled unless the server cancels it itself (its VAD with ``interrupt_response``), and its
  remaining deltas are ignored.
* **Tools.** A response's calls run concurrently; each output goes back on its own, then one
  ``response.create`` (parallel calls). Typed turns lost with a link are sent again.
* **Carry-over** (:mod:`.carryover`): a new session gets the recent turns as items and a
  digest in its instructions; the first reply after replayed assistant items must have audio,
  else the replayed replies and the text answer are deleted and the answer asked for again
  (field notes item 3).
"""

from __future__ import annotations

import logging
from typing import Any

from ..audio.turns import Actions as TurnActions
from ..conversation import Action, FinishPlayback, NewConversation, Outbox, Play, Publish, RunTool, StopPlayback
from . import events as ev
from .carryover import History, carry_over, text_only_repair
from .deadlines import Deadlines
from .dialect import Dialect
from .models import Item
from .reply import Counters, Reply, reply_summary, truncation_point
from .session import SessionSettings
from .transcripts import Transcripts

logger = logging.getLogger(__name__)
BYTES_PER_MS = 48  # 24 kHz mono PCM16


class RealtimeConversation(Deadlines):
    def __init__(self, *, server_interrupts: bool, history: History | None = None, carry_turns: int = 6,
                 max_queue_ms: int = 2000, frame_ms: int = 20, reply_timeout_s: float = 60.0) -> None:
        #: The server cancels a reply itself when its VAD hears the person (server_vad mode).
        self.server_interrupts = server_interrupts
        self.history = history or History()
        self.transcripts = Transcripts(self.history)       # what was said, for the carry-over
        self.carry_turns = carry_turns
        self.reply_timeout_s = reply_timeout_s
        self.outbox = Outbox(max_audio=max(1, max_queue_ms // frame_ms),
                             is_audio=lambda e: isinstance(e, ev.InputAudioAppend))
        self.stats = Counters()
        self.settings = SessionSettings()
        self.dialect = Dialect.GA
        self.model: str | None = None
        self.session_id: str | None = None
        self._reply: Reply | None = None
        self._awaiting_reply_since: float | None = None   # a turn was sent; no response yet
        self._ignored: set[str] = set()                   # responses cut off by a barge-in
        self._received_ms: dict[str, int] = {}            # audio received per item
        self._playing = False                             # audio handed to the pipeline, not drained
        self._tools: dict[str, str] = {}                  # call_id -> name, running
        self._tools_answer = True                         # ask for the answer once they are done
        self._drop_next_reply = False                     # cancel the next response on arrival
        self._answer_again = False                        # a rotation cut a turn off: answer it there
        self._verify_audio = False
        self._end_after_reply = False
        self._user_talking = False
        self.carried = (0, 0)   # (items, digest characters) given to the current session
        self._server_hearing_since: float | None = None   # its VAD is in a turn not committed yet
        self._sent_end_at: float | None = None   # the device's VAD ended the turn it was sending

    # ---------------------------------------------------------------- sessions
    def begin_session(self, *, session_id: str, fresh: bool, now: float, settings: SessionSettings | None = None,
                      dialect: Dialect | None = None, model: str | None = None) -> list[ev.ClientEvent]:
        self.session_id, self.model = session_id, model
        self.settings, self.dialect = settings or self.settings, dialect or self.dialect
        if fresh:
            self.history.clear()
        first, self.carried = carry_over(self.history, self.carry_turns if not fresh else None, self.settings,
                                         self.dialect, self.model)
        self._verify_audio = bool(self.history.carried_assistant_ids()) and not fresh
        if self._answer_again and not fresh:   # the person's last turn still wants its answer
            heard = self.history.turns and self.history.turns[-1].role == "user"
            again = [ev.ResponseCreate()] if heard else self.transcripts.replay(server_vad=self.server_interrupts)
            first += again
            self._awaiting_reply_since = now if again else None
        self._answer_again = False
        return first

    def end_session(self, *, lost: bool, now: float) -> list[Action]:
        """Forget what only the old session knew; a lost link also cuts off the reply in flight."""
        out: list[Action] = [StopPlayback("link_lost")] if lost and (self._playing or self._reply) else []
        if lost:
            self._tools.clear()    # their outputs would go to a session that does not know them
            out.extend(self._resend_unconfirmed())
        elif self._awaiting_reply_since is not None or self._server_hearing_since is not None:
            self._answer_again = True
        self._reply, self._awaiting_reply_since, self._server_hearing_since = None, None, None
        self._drop_next_reply, self.session_id = False, None
        self._ignored.clear()
        self._received_ms.clear()
        self.transcripts.forget_session()
        return out

    def new_conversation(self) -> None:
        self.transcripts.forget_typed()
        self.history.clear()
        self.outbox.drop_audio()
        self._end_after_reply = False

    def end_after_reply(self) -> None:
        self._end_after_reply = True

    @property
    def idle(self) -> bool:
        # Not idle while the server's VAD is in a turn it has not committed: the device's own
        # end of speech can come before the server's commit, and a session swapped in between
        # loses the turn (found by bench/soak_bench.py).
        return (self._reply is None and not self._playing and not self._tools and not self._user_talking
                and self._awaiting_reply_since is None and self._server_hearing_since is None)

    @property
    def received_ms(self) -> dict[str, int]:
        return dict(self._received_ms)

    def counters(self) -> dict[str, int]:
        return dict(self.stats.__dict__, dropped_uplink_frames=self.outbox.dropped_audio)

    # ----------------------------------------------------------------- uplink
    def turn(self, actions: TurnActions, now: float) -> list[Action]:
        out: list[Action] = []
        if actions.clear:
            self.outbox.put(ev.InputAudioClear())
            self.transcripts.turn_answered()
        self.transcripts.sent_audio(actions.send)
        for frame in actions.send:
            self.outbox.put(ev.InputAudioAppend.from_pcm(frame))
            self.stats.appends += 1
            self.stats.bytes_up += len(frame)
        if actions.speech_started:
            self._user_talking = True
            self._sent_end_at = None
            out.append(Publish("speech_started", {"source": "device"}))
        self._end_turn(now, commit=actions.commit, respond=actions.respond)
        if actions.speech_ended:
            self._user_talking = False
            self._sent_end_at = None if actions.commit else now
            out.append(Publish("speech_ended", {"committed": actions.commit}))
        return out

    def say(self, text: str, now: float) -> list[Action]:
        turn = ev.ItemCreate(item=Item.user_text(text))
        self.outbox.put(turn)
        self.outbox.put(ev.ResponseCreate())
        self._awaiting_reply_since = now
        self.transcripts.typed(turn)
        return [Publish("say", {"text": text})]

    def _resend_unconfirmed(self) -> list[Action]:
        """Typed turns written into a link that then died never reached the server: send them
        again in the next session (those still waiting in the outbox go anyway)."""
        lost = self.transcripts.unconfirmed(besides=list(self.outbox))
        for turn in lost:
            self.outbox.put(turn)
            self.outbox.put(ev.ResponseCreate())
        return [Publish("say_resent", {"turns": len(lost)})] if lost else []

    # ---------------------------------------------------------------- downlink
    def server_event(self, event: ev.ServerEvent, now: float) -> list[Action]:
        handler = _HANDLERS.get(type(event))
        if handler is not None:
            return handler(self, event, now)   # type: ignore[no-any-return]
        return self.transcripts.server_event(event)

    def _on_committed(self, event: ev.InputAudioCommitted, now: float) -> list[Action]:
        self.stats.turns += 1
        self._user_talking = False
        self._server_hearing_since = self._sent_end_at = None
        self.history.placeholder(event.item_id, "user")
        if self._awaiting_reply_since is None:
            self._awaiting_reply_since = now
        return [Publish("turn", {"item_id": event.item_id})]

    def _on_speech_started(self, event: ev.SpeechStarted, now: float) -> list[Action]:
        out: list[Action] = [Publish("speech_started", {"source": "server"})]
        self._server_hearing_since = now
        if self._playing:
            out.append(StopPlayback("server_vad"))
        return out

    def _on_response_created(self, event: ev.ResponseCreated, now: float) -> list[Action]:
        if self._drop_next_reply:
            # asked for before the person stopped the device: it is not wanted any more
            self._drop_next_reply = False
            self._ignored.add(event.response.id or "")
            self.outbox.put(ev.ResponseCancel())
            self.stats.cancels += 1
            return []
        self._reply = Reply(event.response.id or "", now, now)
        self._awaiting_reply_since = None
        self.transcripts.turn_answered()
        return [Publish("response_started", {"response_id": event.response.id})]

    def _on_audio_delta(self, event: ev.AudioDelta, now: float) -> list[Action]:
        if event.response_id in self._ignored:
            return []
        pcm = event.pcm
        if len(pcm) % 2:
            pcm = pcm[:-1]  # half a sample cannot be played
        if not pcm:
            return []
        self._received_ms[event.item_id] = self._received_ms.get(event.item_id, 0) + len(pcm) // BYTES_PER_MS
        self.stats.bytes_down += len(pcm)
        self._playing = True
        out: list[Action] = []
        reply = self._reply
        if reply is not None and reply.id == event.response_id:
            reply.last_news = now
            if not reply.audio:
                reply.audio = True
                out.append(Publish("first_delta", {"response_id": event.response_id, "item_id": event.item_id}))
        out.append(Play(event.item_id, pcm))
        return out

    def _on_audio_done(self, event: ev.AudioDone, now: float) -> list[Action]:
        if event.response_id in self._ignored:
            return []
        if self._reply is not None:
            self._reply.last_news = now
        return [FinishPlayback()]

    def _on_error(self, event: ev.ErrorEvent, now: float) -> list[Action]:
        code = event.code or "error"
        if code == "response_cancel_not_active":
            return []  # we cancelled a reply that had just ended: harmless (field notes item 13)
        out: list[Action] = [Publish("error", {"code": code, "error": event.error.message[:300], "fatal": False})]
        if self._reply is None and self._awaiting_reply_since is not None and "commit" in code:
            # The turn was refused (input_audio_buffer_commit_empty): no reply is coming.
            self._awaiting_reply_since = None
            out.append(Publish("reply_finished", {"response_id": None, "refused": code}))
        return out

    def _on_response_done(self, event: ev.ResponseDone, now: float) -> list[Action]:
        response = event.response
        self.stats.replies += 1
        reply = self._reply if self._reply and self._reply.id == response.id else None
        calls = [item for item in response.output if item.type == "function_call"]
        messages = [item for item in response.output if item.type == "message"]
        had_audio = bool(reply and reply.audio) or any(item.has_audio for item in messages)
        out: list[Action] = [Publish("reply", reply_summary(response, messages, calls, had_audio))]
        if response.status == "cancelled":
            for item in messages:
                self.history.mark_interrupted(item.id or "")
        if reply is not None:
            reply.server_done = True
        if self._verify_audio and messages and response.status == "completed":
            self._verify_audio = False
            if not had_audio:
                self._reply = None
                return out + self._text_only_fallback(messages)
            logger.info("carry-over verified: the first reply in the new session has audio")
        if calls:
            self._tools_answer = True
        for call in calls:
            self._tools[call.call_id or ""] = call.name or ""
            self.stats.tool_calls += 1
            out.append(Publish("tool", {"name": call.name, "arguments": (call.arguments or "")[:300],
                                        "call_id": call.call_id}))
            out.append(RunTool(call.call_id or "", call.name or "", call.arguments or "{}"))
        if calls:
            if reply is not None:
                self._reply = None   # the answer comes in the response after the outputs
            return out
        out.extend(self._maybe_finished(now))
        return out

    # ------------------------------------------------------------- the speaker
    def playback_started(self, item_id: str, now: float) -> list[Action]:
        response = self._reply.id if self._reply else None
        return [Publish("playback_started", {"item_id": item_id, "response_id": response})]

    def playback_drained(self, now: float) -> list[Action]:
        self._playing = False
        if self._tools:
            return [Publish("working", {"tools": sorted(self._tools.values())})]
        return self._maybe_finished(now)

    def _maybe_finished(self, now: float) -> list[Action]:
        """The reply is over once the server finished it and the speaker played all of it."""
        reply = self._reply
        if self._playing or self._tools or reply is None or not reply.server_done:
            return []
        self._reply = None
        out: list[Action] = [Publish("reply_finished", {"response_id": reply.id})]
        if self._end_after_reply:
            self._end_after_reply = False
            logger.info("the conversation ended; the next one starts fresh")
            out.append(NewConversation())
        return out

    def barge_in(self, cause: str, played_ms: dict[str, int], now: float) -> list[Action]:
        """Playback stopped (``cause``); truncate what was heard, cancel what the server won't."""
        was_playing, self._playing = self._playing, False
        reply = self._reply
        if self._tools and cause != "link_lost":
            # The person stopped the device (or talks): the running calls still get their
            # outputs (the conversation must stay whole), but no spoken answer follows them.
            self._tools_answer = False
        stopped = cause in ("button", "new_conversation", "wake", "stop_word")
        if stopped and reply is None and self._awaiting_reply_since:
            self._drop_next_reply = True   # an answer already asked for (after tools) is not wanted
            self._awaiting_reply_since = None
        self.stats.barge_ins += cause != "link_lost"
        if cause == "link_lost":
            return []
        if reply is not None and not reply.server_done:
            if cause not in ("voice", "server_vad") or not self.server_interrupts:
                self.outbox.put(ev.ResponseCancel())
                self.stats.cancels += 1
            self._ignored.add(reply.id)
        truncated = truncation_point(played_ms, self._received_ms) if was_playing else None
        if truncated is not None:
            self.outbox.put(ev.ItemTruncate(item_id=truncated[0], content_index=0, audio_end_ms=truncated[1]))
            self.stats.truncates += 1
            self.history.mark_interrupted(truncated[0])
        if cause == "rotation" and reply is not None:
            self._answer_again = True   # cut off by a forced rotation: the next session answers it
        self._reply = None
        logger.info("barge-in (%s): playback stopped, truncate %s", cause, truncated)
        out: list[Action] = [Publish("barge_in", {"cause": cause, "item_id": truncated[0] if truncated else None,
                                                  "audio_end_ms": truncated[1] if truncated else None})]
        if cause not in ("voice", "server_vad"):
            out.append(Publish("reply_finished", {"response_id": reply.id if reply else None, "interrupted": True}))
        return out

    # ------------------------------------------------------------------ tools
    def tool_finished(self, call_id: str, output: str, outcome: str, now: float) -> list[Action]:
        name = self._tools.pop(call_id, None)
        if name is None:
            return []  # its session is gone: the output would mean nothing there
        self.outbox.put(ev.ItemCreate(item=Item.function_output(call_id, output)))
        out: list[Action] = [Publish("tool_result", {"name": name, "output": output[:300], "outcome": outcome})]
        if not self._tools and self._tools_answer:
            self.outbox.put(ev.ResponseCreate())   # one response for all the parallel calls
            self._awaiting_reply_since = now
        return out

    # ------------------------------------------------------------- carry-over
    def _text_only_fallback(self, messages: list[Item]) -> list[Action]:
        """Field notes item 3: the model answered in text after replayed history."""
        self.stats.text_only_fallbacks += 1
        deleted = len(self.history.carried_assistant_ids())
        for event in text_only_repair(self.history, messages, self.settings, self.dialect):
            self.outbox.put(event)
        return [Publish("carry_over_fallback", {"deleted": deleted})]


_HANDLERS: dict[type, Any] = {
    ev.InputAudioCommitted: RealtimeConversation._on_committed,
    ev.SpeechStarted: RealtimeConversation._on_speech_started,
    ev.ResponseCreated: RealtimeConversation._on_response_created,
    ev.AudioDelta: RealtimeConversation._on_audio_delta,
    ev.AudioDone: RealtimeConversation._on_audio_done,
    ev.ResponseDone: RealtimeConversation._on_response_done,
    ev.ErrorEvent: RealtimeConversation._on_error,
}
