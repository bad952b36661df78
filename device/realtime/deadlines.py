"""The Realtime conversation's deadlines, checked on each tick: a reply with no news, a turn
with no reply, a turn the server's VAD does not end (part of
:class:`device.realtime.conversation.RealtimeConversation`, whose state it reads)."""

from __future__ import annotations

import logging

from ..conversation import Action, Outbox, Publish, StopPlayback
from . import events as ev
from .reply import Counters, Reply
from .session import SessionSettings

logger = logging.getLogger("device.realtime.conversation")

#: server_vad: how long after the device's VAD ended a turn (having sent the server's silence
#: and a margin) the server's VAD may still hear speech before the device commits the turn
SERVER_TURN_GRACE_S = 1.5


class Deadlines:
    reply_timeout_s: float
    settings: SessionSettings
    outbox: Outbox
    stats: Counters
    _reply: Reply | None
    _awaiting_reply_since: float | None
    _server_hearing_since: float | None
    _sent_end_at: float | None
    _ignored: set[str]
    _playing: bool

    def tick(self, now: float) -> list[Action]:
        self._end_stuck_turn(now)
        hearing = self._server_hearing_since
        if hearing is not None and now - hearing > self.reply_timeout_s:
            self._server_hearing_since = None   # speech the server never committed: stop waiting for it
        reply = self._reply
        if reply is not None and not reply.server_done and now - reply.last_news > self.reply_timeout_s:
            return self._give_up(f"reply {reply.id} had no news for {self.reply_timeout_s:.0f} s", now, reply.id)
        since = self._awaiting_reply_since
        if reply is None and since is not None and now - since > self.reply_timeout_s:
            return self._give_up(f"no reply came within {self.reply_timeout_s:.0f} s of the turn", now, None)
        return []

    def _end_stuck_turn(self, now: float) -> None:
        """server_vad: the device stopped sending a turn (its own VAD ended it, after the
        server's silence and a margin) but the server's VAD still hears speech. Room noise just
        above the server's threshold (or a recording's own hiss) can keep it there, and then
        the turn waits for the next sound in the room. After SERVER_TURN_GRACE_S the device
        commits the turn itself and asks for the reply."""
        ended, detection = self._sent_end_at, self.settings.turn_detection
        if (ended is None or self._server_hearing_since is None or now - ended < SERVER_TURN_GRACE_S
                or detection is None or detection.type != "server_vad"):
            return
        self._sent_end_at = None
        logger.warning("the server's VAD still heard speech %.1f s after the device's VAD ended the turn "
                       "(room noise above its threshold?): committing the turn", now - ended)
        self.stats.forced_commits += 1
        self._end_turn(now, commit=True, respond=detection.create_response)

    def _end_turn(self, now: float, *, commit: bool, respond: bool) -> None:
        """Commit the audio sent (a turn the device ends) and/or ask for the reply."""
        if commit:
            self.outbox.put(ev.InputAudioCommit())
            self.stats.commits += 1
        if respond:
            self.outbox.put(ev.ResponseCreate())
            self._awaiting_reply_since = now

    def _give_up(self, why: str, now: float, response_id: str | None) -> list[Action]:
        logger.warning("%s: giving it up and listening again", why)
        self.stats.reply_timeouts += 1
        if response_id:
            self._ignored.add(response_id)
            self.outbox.put(ev.ResponseCancel())
        self._reply = None
        self._awaiting_reply_since = None
        out: list[Action] = [Publish("error", {"code": "reply_timeout", "error": why, "fatal": False})]
        if self._playing:
            out.append(StopPlayback("reply_timeout"))
        out.append(Publish("reply_finished", {"response_id": response_id, "timed_out": True}))
        return out
