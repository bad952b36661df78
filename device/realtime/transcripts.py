"""What was said, from the server's transcripts, into the history the carry-over uses; and the
``heard`` (the person) and ``said`` (the device, with its ``phase``) facts for the bus."""

from __future__ import annotations

from typing import Any

from ..conversation import Action, Publish
from . import events as ev
from .carryover import History

#: At most this many 20 ms frames of a turn are kept for a replay (30 s).
MAX_TURN_FRAMES = 1500


class Transcripts:
    def __init__(self, history: History) -> None:
        self.history = history
        self._phases: dict[str, str] = {}   # item -> commentary | final_answer (this session)
        self._typed: list[ev.ItemCreate] = []   # typed turns the server has not shown yet
        self._turn_audio: list[bytes] = []      # the awaiting turn's audio, as sent

    def typed(self, turn: ev.ItemCreate) -> None:
        """A typed turn (``pivoice say``) on its way; confirmed by ``conversation.item.added``."""
        self._typed.append(turn)

    def unconfirmed(self, *, besides: list[Any]) -> list[ev.ItemCreate]:
        """The typed turns the server never showed, but for those in ``besides`` (still queued)."""
        queued = {id(e) for e in besides}
        return [t for t in self._typed if id(t) not in queued]

    def forget_typed(self) -> None:
        self._typed.clear()
        self._turn_audio.clear()

    def sent_audio(self, frames: list[bytes]) -> None:
        """Audio of the turn that awaits its answer (kept until a response starts)."""
        self._turn_audio.extend(frames)
        del self._turn_audio[:-MAX_TURN_FRAMES]

    def turn_answered(self) -> None:
        self._turn_audio.clear()

    def replay(self, *, server_vad: bool) -> list[Any]:
        """The last turn again, as audio, for a session that never heard it (a forced rotation
        cut it off before its transcript came back): the server's VAD ends it, or we do."""
        frames, self._turn_audio = self._turn_audio, []
        out: list[Any] = [ev.InputAudioAppend.from_pcm(f) for f in frames]
        if frames and not server_vad:
            out += [ev.InputAudioCommit(), ev.ResponseCreate()]
        return out

    def forget_session(self) -> None:
        self._phases.clear()

    def server_event(self, event: ev.ServerEvent) -> list[Action]:
        if isinstance(event, ev.InputTranscriptionCompleted):
            self.history.record(event.item_id, "user", event.transcript)
            return [Publish("heard", {"item_id": event.item_id, "text": event.transcript})]
        if isinstance(event, ev.ConversationItemAdded):
            item = event.item
            if item.role == "user":
                self._typed = [t for t in self._typed if t.item.text != item.text]
            if item.role == "user" and item.text and not (item.id or "").startswith("carry_"):
                self.history.record(item.id or "", "user", item.text)
        elif isinstance(event, ev.OutputItemAdded):
            if event.item.phase and event.item.id:
                self._phases[event.item.id] = event.item.phase
        elif isinstance(event, ev.AudioTranscriptDone):
            phase = event.phase or self._phases.get(event.item_id)
            if phase != "commentary":
                # A spoken preamble ("let me check that") is not a turn of its own: the
                # carry-over keeps the answers, and the preamble stays out of the history.
                self.history.record(event.item_id, "assistant", event.transcript)
            return [Publish("said", {"item_id": event.item_id, "text": event.transcript[:500], "phase": phase})]
        return []
