"""The device's state machine: what the LEDs show, decided in one place.

Theory of operation. Components publish what happened on the bus; :func:`input_for` (the one
place that does it) turns those facts into :class:`Input` s, and the table below is the only
place that turns inputs into a :class:`~device.state.DeviceState`. ``REST`` means "idle, or
muted when the microphone is muted, or error while an audio device is missing". Pairs that are
not in the table leave the state as it is (for example the local end of speech arriving after
the server already committed the turn). Every change goes through :meth:`StateMachine._set`,
which logs ``state A -> B`` and
publishes a ``state`` event on the bus; LEDs, the watchdog's status line and the control
socket follow those events.

    =========  ==========================================================================
    state      input -> next state
    =========  ==========================================================================
    idle       speech_started/wake -> listening, turn_sent/response_started -> thinking,
               audio_started -> speaking, mute -> muted, working -> thinking
    listening  speech_ended -> REST, turn_sent/response_started -> thinking,
               audio_started -> speaking, mute -> muted
    thinking   audio_started -> speaking, reply_finished -> REST, speech_started/wake -> listening,
               mute -> muted
    speaking   reply_finished -> REST, speech_started/wake -> listening (barge-in),
               working -> thinking (a preamble ended; its tools still run)
    muted      unmute -> idle, audio_started -> speaking (a "say" still speaks),
               turn_sent/response_started -> thinking
    offline    link_up -> REST
    error      link_up -> REST, link_down -> offline (retrying after a reload),
               device_back -> REST (link up) or offline
    any        link_down -> offline, fatal -> error, device_missing -> error (except as listed)
    (Live)     task_running (idle, listening, speaking) -> thinking

A missing microphone or speaker is an error a person must see (not "offline", which means
the network): while one is missing, offline and REST show as error; the link and the
conversation go on (``say`` still answers through the speaker when that is there).
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
    WORKING = "working"           # the reply's tools run after its spoken part ended
    DEVICE_MISSING = "device_missing"
    DEVICE_BACK = "device_back"
    WAKE = "wake"                 # the wake word was heard: listening at once
    TASK_RUNNING = "task_running"   # GPT-Live: the model's speech ended, its delegated task goes on


REST = "rest"
RESUME = "resume"   # after an error cleared: REST when the link is up, else offline
I = Input  # noqa: E741 - the short name keeps the table below readable
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
    (S.SPEAKING, I.WORKING): S.THINKING,
    (S.IDLE, I.WORKING): S.THINKING,
    (S.SPEAKING, I.SPEECH_STARTED): S.LISTENING,
    (S.IDLE, I.WAKE): S.LISTENING,
    (S.THINKING, I.WAKE): S.LISTENING,
    (S.SPEAKING, I.WAKE): S.LISTENING,
    (S.MUTED, I.UNMUTE): S.IDLE,
    (S.MUTED, I.AUDIO_STARTED): S.SPEAKING,
    (S.MUTED, I.TURN_SENT): S.THINKING,
    (S.MUTED, I.RESPONSE_STARTED): S.THINKING,
    (S.OFFLINE, I.LINK_UP): REST,
    (S.ERROR, I.LINK_UP): REST,
    (S.ERROR, I.LINK_DOWN): S.OFFLINE,
    **{(state, I.LINK_DOWN): S.OFFLINE for state in _ONLINE},
    **{(state, I.FATAL): S.ERROR for state in (*_ONLINE, S.OFFLINE)},
    **{(state, I.DEVICE_MISSING): S.ERROR for state in (*_ONLINE, S.OFFLINE)},
    (S.ERROR, I.DEVICE_BACK): RESUME,
    **{(state, I.TASK_RUNNING): S.THINKING for state in (S.IDLE, S.LISTENING, S.SPEAKING)},
}

#: What the bus says -> the input it is. Kinds not here (and facts that say nothing of the
#: state) are no input.
BUS_INPUTS: dict[str, Input] = {
    "speech_started": I.SPEECH_STARTED,
    "wake": I.WAKE,
    "speech_ended": I.SPEECH_ENDED,
    "turn": I.TURN_SENT,
    "response_started": I.RESPONSE_STARTED,
    "first_delta": I.AUDIO_STARTED,
    "reply_finished": I.REPLY_FINISHED,
    "working": I.WORKING,
    "session": I.LINK_UP,
    "standby": I.LINK_UP,   # GPT-Live between sessions: ready, it connects when spoken to
    "delegation_running": I.TASK_RUNNING,
    "link_down": I.LINK_DOWN,
}


def input_for(event: BusEvent) -> Input | None:
    """The state-machine input a bus event is, if any."""
    if event.kind == "link_down" and event.data.get("fatal"):
        return I.FATAL   # a bad key, a refused setup: a person must act
    if event.kind in BUS_INPUTS:
        return BUS_INPUTS[event.kind]
    if event.kind == "error" and event.data.get("fatal"):
        return I.FATAL
    if event.kind == "mute":
        return I.MUTE if event.data.get("muted") else I.UNMUTE
    if event.kind == "device_problem":
        return I.DEVICE_MISSING
    if event.kind == "device_ok":
        return I.DEVICE_BACK
    return None


class StateMachine:
    def __init__(self, bus: EventBus, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.bus = bus
        self.clock = clock
        self.state = S.OFFLINE
        self.since = clock()
        self.muted = False
        self.link_up = False
        self.fatal = False
        self.device_problem: str | None = None
        self.changes = 0

    def follow(self, event: BusEvent) -> None:
        """A bus listener: feed the input the event is (see :func:`input_for`)."""
        what = input_for(event)
        if what is not None:
            details = {k: v for k, v in event.data.items() if k in ("error", "retry_in_s", "session_id", "problem")}
            self.feed(what, **details)

    def feed(self, what: Input, **details: object) -> S:
        """Apply one input; returns the state after it."""
        self._note(what, details)
        target = TRANSITIONS.get((self.state, what))
        if target == RESUME:
            target = REST if self.link_up else S.OFFLINE
        if target == REST:
            target = S.ERROR if self.device_problem else S.MUTED if self.muted else S.IDLE
        if target == S.OFFLINE and self.device_problem:
            target = S.ERROR
        if target is not None and target != self.state and not (self.fatal and what is I.DEVICE_BACK):
            self._set(S(target), what, details)
        return self.state

    def _note(self, what: Input, details: dict[str, object]) -> None:
        if what is I.MUTE:
            self.muted = True
        elif what is I.UNMUTE:
            self.muted = False
        elif what is I.LINK_UP:
            self.link_up, self.fatal = True, False
        elif what is I.LINK_DOWN:
            self.link_up, self.fatal = False, False
        elif what is I.FATAL:
            self.link_up, self.fatal = False, True
        elif what is I.DEVICE_MISSING:
            self.device_problem = str(details.get("problem") or "an audio device is missing")
        elif what is I.DEVICE_BACK:
            self.device_problem = None

    def _set(self, new: S, cause: Input, details: dict[str, object]) -> None:
        old, self.state = self.state, new
        self.since = self.clock()
        self.changes += 1
        logger.info("state %s -> %s (%s)", old, new, cause, extra={"PIVOICE_STATE": str(new)})
        self.bus.publish(BusEvent("state", self.since, {"state": str(new), "previous": str(old), "cause": str(cause),
                                                         **details}))
