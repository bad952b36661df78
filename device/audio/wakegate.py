"""When the microphone may start a turn, with a wake word: sans-I/O, time is an input.

Nothing leaves the device until the wake word is heard. Then the person has ``listen_s`` to
start talking; the turn runs as the turn mode says; after the device's reply (once the speaker
has drained) a ``follow_up_s`` window takes another turn without the word. While the device
speaks, only the wake word (or the button) interrupts it: a television talking over the reply
must not. States::

    asleep  --heard--> open (until now + listen_s)
    open    --speech starts--> turn            --window passes--> asleep
    turn    --speech ends--> open (until now + follow_up_s; renewed while the reply plays)
    any     --heard while the device speaks--> open (the reply is interrupted)

The wake word itself is not sent: when it is heard the turn taker's pre-roll is cut to the
last ``keep_ms`` (the detector fires near the end of the word; the words said right after it,
before the detection, are in those frames), see :meth:`device.audio.turns.TurnTaker.frame`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class WakeSettings:
    follow_up_s: float = 5.0     # after a reply: a turn without the wake word
    listen_s: float = 6.0        # after the wake word: time to start talking
    keep_ms: int = 160           # pre-roll kept at the detection (words right after the word)


class WakeGate:
    def __init__(self, settings: WakeSettings | None = None) -> None:
        self.settings = settings or WakeSettings()
        self.open_until = float("-inf")
        self.in_turn = False
        self.heard = 0
        self._reply_due = False      # a turn ended: its reply renews the follow-up window
        self.listening = False       # woken, no turn yet (the LEDs show listening)

    def is_open(self, now: float) -> bool:
        """Frames may start (or continue) a turn."""
        return self.in_turn or now < self.open_until

    def wake(self, now: float) -> None:
        """The wake word was heard (or the button pressed): listen for ``listen_s``."""
        self.heard += 1
        self.listening = True
        self._reply_due = False
        self.open_until = max(self.open_until, now + self.settings.listen_s)

    def playing(self, now: float) -> None:
        """The device speaks: the follow-up window counts from the end of its reply."""
        if self._reply_due or self.is_open(now):
            self.open_until = max(self.open_until, now + self.settings.follow_up_s)

    def turn_started(self, now: float) -> None:
        self.in_turn = True
        self.listening = self._reply_due = False

    def turn_ended(self, now: float) -> None:
        self.in_turn = False
        self._reply_due = True
        self.open_until = now + self.settings.follow_up_s

    def expired(self, now: float) -> bool:
        """Once, when the window after the wake word passed without a turn."""
        if self.listening and not self.is_open(now):
            self.listening = False
            return True
        return False

    def sleep(self) -> None:
        """Back to waiting for the word (a new conversation, mute)."""
        self.in_turn = self._reply_due = self.listening = False
        self.open_until = float("-inf")
