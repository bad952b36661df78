"""The device's state machine: what the LEDs show, decided in one place.

Theory of operation. Components report what happened as :class:`Input` s; the table below is
the only place that turns them into a :class:`~device.state.DeviceState`. ``REST`` means
"idle, or muted when the microphone is muted". Pairs that are not in the table leave the state
as it is (for example the local end of speech arriving after the server already committed the
turn). Every change goes through :meth:`StateMachine._set`, which logs ``state A -> B`` and
publishes a ``state`` event on the bus; LEDs, the watchdog's status line and the control
socket follow those events.

    =========  ==========================================================================
    state      input -> next state
    =========  ==========================================================================
    idle       speech_started -> listening, turn_sent/response_started -> thinking,
               audio_started -> speaking, mute -> muted
    listening  speech_ended -> REST, turn_sent/response_started -> thinking,
               audio_started -> speaking, mute -> muted
    thinking   audio_started -> speaking, reply_finished -> REST, speech_started -> listening,
               mute -> muted
    speaking   reply_finished -> REST, speech_started -> listening (barge-in)
    muted      unmute -> idle, audio_started -> speaking (a "say" still speaks),
               turn_sent/response_started -> thinking
    offline    link_up -> REST
    error      link_up -> REST, link_down -> offline (retrying after a reload)
    any        link_down -> offline, fatal -> error (except as listed)
    =========  ==========================================================================
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Callable

from .bus import BusEvent, EventBus
from .state import DeviceState as S

logger = logging.getLogger(__name__)


class Input(enum.StrEnum):
    LINK_UP = "link_up"
    LINK_DOWN = "link_down"
    FATAL = "fatal"
    SPEECH_STARTED = "speech_started"
    SPEECH_ENDED = "speech_ended"
    TURN_SENT = "turn_sent"
    RESPONSE_STARTED = "response_started"
    AUDIO_STARTED = "audio_started"
    REPLY_FINISHED = "reply_finished"
    MUTE = "mute"
    UNMUTE = "unmute"


REST = "rest"
I = Input
_ONLINE = (S.IDLE, S.LISTENING, S.THINKING, S.SPEAKING, S.MUTED)

TRANSITIONS: dict[tuple[S, Input], S | str] = {
    (S.IDLE, I.SPEECH_STARTED): S.LISTENING,
    (S.IDLE, I.TURN_SENT): S.THINKING,
    (S.IDLE, I.RESPONSE_STARTED): S.THINKING,
    (S.IDLE, I.AUDIO_STARTED): S.SPEAKING,
    (S.IDLE, I.MUTE): S.MUTED,
    (S.LISTENING, I.SPEECH_ENDED): REST,
    (S.LISTENING, I.TURN_SENT): S.THINKING,
    (S.LISTENING, I.RESPONSE_STARTED): S.THINKING,
    (S.LISTENING, I.AUDIO_STARTED): S.SPEAKING,
    (S.LISTENING, I.MUTE): S.MUTED,
    (S.THINKING, I.AUDIO_STARTED): S.SPEAKING,
    (S.THINKING, I.REPLY_FINISHED): REST,
    (S.THINKING, I.SPEECH_STARTED): S.LISTENING,
    (S.THINKING, I.MUTE): S.MUTED,
    (S.SPEAKING, I.REPLY_FINISHED): REST,
    (S.SPEAKING, I.SPEECH_STARTED): S.LISTENING,
    (S.MUTED, I.UNMUTE): S.IDLE,
    (S.MUTED, I.AUDIO_STARTED): S.SPEAKING,
    (S.MUTED, I.TURN_SENT): S.THINKING,
    (S.MUTED, I.RESPONSE_STARTED): S.THINKING,
    (S.OFFLINE, I.LINK_UP): REST,
    (S.ERROR, I.LINK_UP): REST,
    (S.ERROR, I.LINK_DOWN): S.OFFLINE,
    **{(state, I.LINK_DOWN): S.OFFLINE for state in _ONLINE},
    **{(state, I.FATAL): S.ERROR for state in (*_ONLINE, S.OFFLINE)},
}


class StateMachine:
    def __init__(self, bus: EventBus, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.bus = bus
        self.clock = clock
        self.state = S.OFFLINE
        self.since = clock()
        self.muted = False
        self.changes = 0

    def feed(self, what: Input, **details: object) -> S:
        """Apply one input; returns the state after it."""
        if what is I.MUTE:
            self.muted = True
        elif what is I.UNMUTE:
            self.muted = False
        target = TRANSITIONS.get((self.state, what))
        if target == REST:
            target = S.MUTED if self.muted else S.IDLE
        if target is not None and target != self.state:
            self._set(S(target), what, details)
        return self.state

    def _set(self, new: S, cause: Input, details: dict[str, object]) -> None:
        old, self.state = self.state, new
        self.since = self.clock()
        self.changes += 1
        logger.info("state %s -> %s (%s)", old, new, cause, extra={"PIVOICE_STATE": str(new)})
        self.bus.publish(BusEvent("state", self.since, {"state": str(new), "previous": str(old), "cause": str(cause),
                                                         **details}))
