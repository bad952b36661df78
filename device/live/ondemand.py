"""Connect on demand, sans-I/O: when to close a billed Live session, and what the next one is told.

Every connected second of GPT-Live is billed, silence included (reference sections 6, 10), so
the device opens a session on the wake word or the button and closes it after ``idle_close``
seconds in which nothing happened. :class:`IdleTimer` decides that from facts and the time
given to it (a monotonic clock reading, seconds): activity (speech heard or said) restarts the
countdown; a hold (a delegated task running, playback still draining) keeps the session open
whatever the countdown says.

:class:`ConversationMemory` keeps the finished turns across sessions and renders the next
``session.start``'s ``input`` from them within the limits (128 messages, 8,192 tokens), so a
new session after an idle close or ``session.closed`` ``expired`` continues the conversation.
"""

from __future__ import annotations

from collections import deque

from .models import InputMessage, fit_history
from .transcripts import Turn, to_history


class IdleTimer:
    def __init__(self, idle_close_s: float) -> None:
        if idle_close_s <= 0:
            raise ValueError("idle_close_s must be positive")
        self.idle_close_s = idle_close_s
        self._last_activity: float | None = None
        self._holds: set[str] = set()

    def start(self, now: float) -> None:
        """A session opened: the countdown starts now."""
        self._last_activity = now
        self._holds.clear()

    def activity(self, now: float) -> None:
        """Something was heard or said (a transcript fragment, output audio, the button)."""
        self._last_activity = now

    def hold(self, reason: str) -> None:
        """Keep the session open while ``reason`` lasts (e.g. "delegation", "playback")."""
        self._holds.add(reason)

    def release(self, reason: str, now: float) -> None:
        """``reason`` is over; the countdown restarts from here."""
        if reason in self._holds:
            self._holds.discard(reason)
            self._last_activity = now

    @property
    def held_by(self) -> frozenset[str]:
        return frozenset(self._holds)

    def deadline(self) -> float | None:
        """When the session should close, or None while held or closed."""
        if self._last_activity is None or self._holds:
            return None
        return self._last_activity + self.idle_close_s

    def due(self, now: float) -> bool:
        deadline = self.deadline()
        return deadline is not None and now >= deadline

    def stop(self) -> None:
        """The session closed."""
        self._last_activity = None
        self._holds.clear()


class ConversationMemory:
    """Finished turns of the conversation, newest last, across sessions."""

    def __init__(self, max_turns: int = 256) -> None:
        self._turns: deque[Turn] = deque(maxlen=max_turns)

    def add(self, turns: list[Turn]) -> None:
        self._turns.extend(t for t in turns if t.text and not t.backchannel)

    def forget(self) -> None:
        """A fresh conversation (the button's "new conversation")."""
        self._turns.clear()

    def __len__(self) -> int:
        return len(self._turns)

    def history(self, *, max_messages: int | None = None, max_tokens: int | None = None) -> list[InputMessage]:
        """``session.input`` for the next session: the newest turns that fit its limits."""
        limits = {k: v for k, v in (("max_messages", max_messages), ("max_tokens", max_tokens)) if v is not None}
        return fit_history(to_history(list(self._turns)), **limits)
