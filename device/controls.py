"""What a person, an admin or the model can ask of the device: the one small interface that the
button, the control socket's commands and the built-in tools go through.

It turns requests into calls on the parts (turn taker, pipeline, session manager) and
publishes what it did on the bus (``mute``, ``volume``, ``new_conversation``, ``button``);
the state machine follows the bus like everyone else.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from hardware.gestures import Gesture, GestureEvent

from .audio.pipeline import AudioPipeline
from .audio.turns import TurnMode, TurnTaker

logger = logging.getLogger(__name__)
#: A long hold after this much speech while talking keeps the push-to-talk turn.
LONG_QUESTION_MS = 300


class Session(Protocol):
    """What the controls need of the session manager."""

    def say(self, text: str) -> None: ...
    def new_conversation(self) -> None: ...
    def end_after_reply(self) -> None: ...
    def interrupt(self, cause: str) -> None: ...
    @property
    def connected(self) -> bool: ...


@runtime_checkable
class OnDemand(Protocol):
    """A session manager that connects on demand (GPT-Live): the button opens a session, and
    mute is also the API's own (``session.input_audio.mute``)."""

    def open_on_demand(self, reason: str) -> None: ...
    def set_muted(self, muted: bool) -> None: ...


class Controls:
    def __init__(self, *, turns: TurnTaker, pipeline: AudioPipeline, session: Session,
                 publish: Callable[[str, dict[str, Any]], None], volume: int) -> None:
        self.turns = turns
        self.pipeline = pipeline
        self.session = session
        self.publish = publish
        self.volume = volume
        pipeline.set_volume(volume)
        self._speech_frames_at_hold = 0
        #: no microphone to talk into (the app also counts the silence standing in for a missing one)
        self.mic_missing: Callable[[], bool] = lambda: pipeline.frontend is None

    # ------------------------------------------------------------------ state
    @property
    def muted(self) -> bool:
        return self.turns.muted

    @property
    def mode(self) -> TurnMode:
        return self.turns.mode

    @property
    def talking(self) -> bool:
        return self.turns.talking

    # ---------------------------------------------------------------- requests
    def set_volume(self, level: int) -> None:
        self.volume = level
        self.pipeline.set_volume(level)
        self.publish("volume", {"level": level})

    def set_muted(self, muted: bool) -> None:
        self.turns.muted = muted
        if isinstance(self.session, OnDemand):
            self.session.set_muted(muted)
        if muted and self.turns.talking:
            self._drop_turn()
        self.publish("mute", {"muted": muted})

    def end_conversation(self) -> None:
        self.session.end_after_reply()

    def new_conversation(self) -> None:
        logger.info("new conversation: nothing is carried over")
        self._drop_turn()
        if self.pipeline.speaking:
            self.session.interrupt("new_conversation")
        self.session.new_conversation()
        self.publish("new_conversation", {})

    def say(self, text: str) -> str | None:
        """Queue a text turn; None, or why it cannot be done now."""
        if not self.session.connected:
            return "not connected; try again when the device is online"
        self.session.say(text)
        return None

    def talk(self, on: bool, held_for_ms: int = 0) -> str | None:
        """Start or end a push-to-talk turn; None, or why not. In the VAD modes the VAD ends
        turns, so a hold only interrupts the device if it is speaking."""
        if on and self.pipeline.speaking:
            self.session.interrupt("button")
        if self.turns.mode is TurnMode.CONTINUOUS and isinstance(self.session, OnDemand):
            if on:
                self.session.open_on_demand("button")   # GPT-Live: the model takes the turns
            return None
        if self.turns.mode is not TurnMode.PUSH_TO_TALK:
            if on:
                self.turns.wake_by_button(self.pipeline.clock())   # with a wake word: listen now
            return f"talk is for [turns] mode = \"push_to_talk\"; in {self.turns.mode} mode just speak"
        if on and self.mic_missing():     # a release still ends a turn the microphone cut off
            return "the microphone is not open"
        self._apply(self.turns.press(held_for_ms) if on else self.turns.release())
        return None

    def interrupt(self) -> None:
        if self.pipeline.speaking:
            self.session.interrupt("button")

    def _drop_turn(self) -> None:
        self._apply(self.turns.cancel())

    def _apply(self, actions: Any) -> None:
        if actions:
            self.pipeline.deliver(actions)   # what is sent goes to the API's rate there

    # ------------------------------------------------------------------ button
    def on_gesture(self, event: GestureEvent) -> None:
        self.publish("button", {"gesture": str(event.gesture)})
        if event.gesture is Gesture.HOLD_START:
            self._speech_frames_at_hold = self.pipeline.counters.speech_frames
            self.talk(True, int((event.at - event.pressed_at) * 1000))
        elif event.gesture is Gesture.HOLD_END:
            self.talk(False)
        elif event.gesture is Gesture.TAP:
            if not self.pipeline.speaking and isinstance(self.session, OnDemand):
                self.session.open_on_demand("button")
            self.interrupt()
        elif event.gesture is Gesture.DOUBLE_TAP:
            self.set_muted(not self.turns.muted)
        elif event.gesture is Gesture.LONG_HOLD:
            heard_ms = (self.pipeline.counters.speech_frames - self._speech_frames_at_hold) * self.turns.frame_ms
            if self.turns.talking and heard_ms >= LONG_QUESTION_MS:
                logger.info("long hold while talking: the push-to-talk turn goes on")
            else:
                self.new_conversation()
