"""Button gestures from raw edges, with software debounce. Time is an input; no clock inside.

Theory of operation. Two layers:

1. **Debounce.** A raw edge is accepted only once the level has stayed put for ``debounce_s``;
   a level that flips back earlier was a bounce (the AIY arcade button fires twice about 80 ms
   apart, field notes item 15; gpiozero's ``bounce_time`` is ignored on mock pins). The
   accepted edge keeps the time it really happened, so durations are measured from the edge.
2. **Gestures**, an explicit state machine (transition table below):

   ======================  =====================  ==================  ====================
   state                   press                  release             deadline passes
   ======================  =====================  ==================  ====================
   IDLE                    -> PRESSED             (ignored)           -
   PRESSED                 (ignored)              -> RELEASED         -> HOLDING: HOLD_START
   HOLDING                 (ignored)              -> IDLE: HOLD_END   -> LONG: LONG_HOLD
   LONG                    (ignored)              -> IDLE: HOLD_END   -
   RELEASED                -> SECOND_PRESS        (ignored)           -> IDLE: TAP
   SECOND_PRESS            (ignored)              -> IDLE: DOUBLE_TAP -> HOLDING: TAP, HOLD_START
   ======================  =====================  ==================  ====================

   hold = push-to-talk (HOLD_START ... HOLD_END; HOLD_START carries the press time so audio
   from the press on can be kept); tap = talk, or interrupt while speaking; double tap = mute;
   long hold = new conversation, unless the person is talking through it (the app decides:
   a long push-to-talk question must not wipe the conversation); HOLD_END follows on release.
   The double-tap window is inclusive: a second press exactly ``double_tap_s`` after the first
   release still makes a double tap.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass

logger = logging.getLogger(__name__)
_EPS = 1e-6  # times are floats: 0.1 + 0.35 must still be "within 0.45"


class Gesture(enum.StrEnum):
    TAP = "tap"
    DOUBLE_TAP = "double_tap"
    HOLD_START = "hold_start"
    HOLD_END = "hold_end"
    LONG_HOLD = "long_hold"


@dataclass(frozen=True)
class GestureEvent:
    gesture: Gesture
    at: float        # when it was recognised
    pressed_at: float  # when the press that began it happened


@dataclass(frozen=True)
class GestureTiming:
    debounce_s: float = 0.1
    hold_s: float = 0.5
    double_tap_s: float = 0.35
    long_hold_s: float = 3.0

    def __post_init__(self) -> None:
        if not 0 <= self.debounce_s < self.hold_s < self.long_hold_s:
            raise ValueError("button timings need 0 <= debounce < hold < long_hold")
        if self.double_tap_s <= self.debounce_s:
            raise ValueError("the double-tap window must be longer than the debounce time")


class _S(enum.Enum):
    IDLE = "idle"
    PRESSED = "pressed"
    HOLDING = "holding"
    LONG = "long"
    RELEASED = "released"
    SECOND_PRESS = "second_press"


class GestureRecognizer:
    def __init__(self, timing: GestureTiming | None = None) -> None:
        self.timing = timing or GestureTiming()
        self._state = _S.IDLE
        self._stable = False             # debounced level: True = pressed
        self._pending: tuple[bool, float] | None = None
        self._pressed_at = 0.0
        self._released_at = 0.0
        self.bounces = 0

    @property
    def state(self) -> str:
        return self._state.value

    def _set(self, new: _S) -> None:
        if new is not self._state:
            logger.debug("button %s -> %s", self._state.value, new.value)
            self._state = new

    # ------------------------------------------------------------------------ raw input
    def edge(self, pressed: bool, t: float) -> list[GestureEvent]:
        """A raw level change at time ``t`` (pressed=True for down). Returns what it completes."""
        out = self.tick(t)
        if self._pending is not None and pressed == self._stable:
            self._pending = None          # flipped back before settling: a bounce
            self.bounces += 1
        elif pressed != self._stable and self._pending is None:
            self._pending = (pressed, t)
        return out

    def tick(self, t: float) -> list[GestureEvent]:
        """Let time pass up to ``t``: settle pending edges, fire deadlines, in time order."""
        out: list[GestureEvent] = []
        while True:
            settle = self._pending[1] + self.timing.debounce_s if self._pending else None
            deadline = self._deadline()
            nxt = min(x for x in (settle, deadline, float("inf")) if x is not None)
            if nxt > t:
                return out
            if settle is not None and settle == nxt:
                level, at = self._pending  # type: ignore[misc]
                self._pending = None
                self._stable = level
                out += self._on_press(at) if level else self._on_release(at)
            else:
                out += self._on_deadline(nxt)

    def next_deadline(self) -> float | None:
        """When :meth:`tick` next has something to do (for the driver's sleep)."""
        settle = self._pending[1] + self.timing.debounce_s if self._pending else None
        times = [x for x in (settle, self._deadline()) if x is not None]
        return min(times) if times else None

    # --------------------------------------------------------------------- the machine
    def _deadline(self) -> float | None:
        timing = self.timing
        return {
            _S.PRESSED: self._pressed_at + timing.hold_s,
            _S.SECOND_PRESS: self._pressed_at + timing.hold_s,
            _S.HOLDING: self._pressed_at + timing.long_hold_s,
            # A press inside the window is only confirmed debounce_s after it happened.
            _S.RELEASED: self._released_at + timing.double_tap_s + timing.debounce_s + _EPS,
        }.get(self._state)

    def _on_press(self, at: float) -> list[GestureEvent]:
        if self._state is _S.IDLE:
            self._pressed_at = at
            self._set(_S.PRESSED)
        elif self._state is _S.RELEASED:
            if at - self._released_at <= self.timing.double_tap_s + _EPS:
                self._pressed_at = at
                self._set(_S.SECOND_PRESS)
            else:  # too late for a double tap: the first was a tap, this is a new press
                tap = GestureEvent(Gesture.TAP, at, self._pressed_at)
                self._pressed_at = at
                self._set(_S.PRESSED)
                return [tap]
        return []

    def _on_release(self, at: float) -> list[GestureEvent]:
        state, pressed_at = self._state, self._pressed_at
        if state is _S.PRESSED:
            self._released_at = at
            self._set(_S.RELEASED)
            return []
        if state is _S.HOLDING:
            self._set(_S.IDLE)
            return [GestureEvent(Gesture.HOLD_END, at, pressed_at)]
        if state is _S.SECOND_PRESS:
            self._set(_S.IDLE)
            return [GestureEvent(Gesture.DOUBLE_TAP, at, pressed_at)]
        if state is _S.LONG:
            self._set(_S.IDLE)
            return [GestureEvent(Gesture.HOLD_END, at, pressed_at)]
        return []

    def _on_deadline(self, at: float) -> list[GestureEvent]:
        state, pressed_at = self._state, self._pressed_at
        if state is _S.PRESSED:
            self._set(_S.HOLDING)
            return [GestureEvent(Gesture.HOLD_START, at, pressed_at)]
        if state is _S.SECOND_PRESS:
            self._set(_S.HOLDING)
            return [GestureEvent(Gesture.TAP, at, pressed_at), GestureEvent(Gesture.HOLD_START, at, pressed_at)]
        if state is _S.HOLDING:
            self._set(_S.LONG)
            return [GestureEvent(Gesture.LONG_HOLD, at, pressed_at)]
        if state is _S.RELEASED:
            self._set(_S.IDLE)
            return [GestureEvent(Gesture.TAP, at, pressed_at)]
        return []
