"""What every conversation core gives back: actions for the device to carry out.

A conversation core (one per speech API: :class:`device.realtime.conversation.RealtimeConversation`,
and GPT-Live's next to it) is sans-I/O, like the protocol core under it: it never awaits,
never reads a clock and owns no socket or sound card. Facts go in (a server event, a turn
decision of the audio pipeline, "the speaker played the first sample of item X", "playback
drained", a tool's result, the time for deadlines); out come

* client events, queued in its :class:`Outbox` (the session manager's sender writes them), and
* the :class:`Action` s below, which the session manager carries out: audio to play, playback
  to stop, a tool to run, a fact to publish on the bus (the state machine, the LEDs, the
  metrics and the control socket follow the bus; no core feeds them directly).

The interface is the same for every API (see :class:`ConversationCore`), so the session
manager, the pipeline and the app do not care which API is on the other end.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol


# ------------------------------------------------------------------------------ actions
@dataclass(frozen=True)
class Play:
    """Queue reply audio (24 kHz mono PCM16) of ``item_id`` for the speaker."""

    item_id: str
    pcm: bytes = field(repr=False)


@dataclass(frozen=True)
class FinishPlayback:
    """No more audio is coming for now: play out what is queued, however little."""


@dataclass(frozen=True)
class StopPlayback:
    """Stop the speaker now; the manager answers with ``barge_in(cause, played)``."""

    cause: str


@dataclass(frozen=True)
class RunTool:
    call_id: str
    name: str
    arguments: str


@dataclass(frozen=True)
class Publish:
    """A fact for the bus (``kind`` and details): what the rest of the device follows."""

    kind: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class NewConversation:
    """Start over in a fresh session with nothing carried (the end_conversation tool)."""


Action = Play | FinishPlayback | StopPlayback | RunTool | Publish | NewConversation


# ------------------------------------------------------------------------------- outbox
class Outbox:
    """Client events waiting for the socket, in order. Audio appends are bounded: while the
    link is down or slow the oldest audio goes first (counted), never the control events."""

    def __init__(self, *, max_audio: int, is_audio: Any) -> None:
        self.max_audio = max_audio
        self._is_audio = is_audio
        self._events: deque[Any] = deque()
        self._audio = 0
        self.dropped_audio = 0

    def put(self, event: Any) -> None:
        if self._is_audio(event):
            if self._audio >= self.max_audio:
                for i, old in enumerate(self._events):
                    if self._is_audio(old):
                        del self._events[i]
                        self._audio -= 1
                        self.dropped_audio += 1
                        break
            self._audio += 1
        self._events.append(event)

    def peek(self) -> Any:
        return self._events[0]

    def pop(self) -> Any:
        event = self._events.popleft()
        if self._is_audio(event):
            self._audio -= 1
        return event

    def drop_audio(self) -> None:
        """Forget queued audio (a new conversation: what was said is not for the new one)."""
        kept = [e for e in self._events if not self._is_audio(e)]
        self.dropped_audio += len(self._events) - len(kept)
        self._events = deque(kept)
        self._audio = 0

    def __len__(self) -> int:
        return len(self._events)

    def __bool__(self) -> bool:
        return bool(self._events)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._events)

    @property
    def audio_frames(self) -> int:
        return self._audio


# --------------------------------------------------------------------------- the interface
class ConversationCore(Protocol):
    """What the session manager needs of a conversation core, whatever the API."""

    outbox: Outbox

    def begin_session(self, *, session_id: str, fresh: bool, now: float) -> list[Any]:
        """A new session is live: the events to send before anything queued (the carry-over)."""

    def end_session(self, *, lost: bool, now: float) -> list[Action]:
        """The session is over (rotated, or ``lost``): forget what only it knew."""

    def server_event(self, event: Any, now: float) -> list[Action]: ...

    def turn(self, actions: Any, now: float) -> list[Action]:
        """What the pipeline decided for a microphone frame (audio to send, commit, ...)."""

    def barge_in(self, cause: str, played_ms: dict[str, int], now: float) -> list[Action]:
        """Playback was stopped; ``played_ms`` is what the speaker got of each item."""

    def playback_started(self, item_id: str, now: float) -> list[Action]: ...

    def playback_drained(self, now: float) -> list[Action]: ...

    def say(self, text: str, now: float) -> list[Action]: ...

    def tool_finished(self, call_id: str, output: str, outcome: str, now: float) -> list[Action]: ...

    def new_conversation(self) -> None: ...

    def tick(self, now: float) -> list[Action]:
        """Deadlines: a reply that never finishes is given up."""

    @property
    def idle(self) -> bool:
        """Nobody talking, nothing playing or pending: a session may be swapped now."""

    def counters(self) -> dict[str, int]: ...
