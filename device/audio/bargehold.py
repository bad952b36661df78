"""Talk-over, confirmed: the reply goes silent at once; it is cancelled only once the person
goes on talking into the silence.

Why. The echo canceller now and then lets a syllable of the device's own voice through almost
whole (AEC3 at the onset of a word after a pause in the reply: 2-5 dB taken off a -37 dBFS
echo, 1.2 s into a reply, in a real-time bench run at -18 dB, 2026-11-27). Two such frames
look exactly like a person talking over the reply (talkover.py cannot tell them apart by
level: a person at the echo's level is as loud), so the reply was cancelled, its audio went up
and the server took the device's own voice for a new turn. A person does not stop after 40 ms;
a leak stops the moment the speaker does.

So on the turn taker's barge-in (the VAD, not the wake word nor the button):

* at once: the speaker is silenced (its buffer dropped), and what it held goes back to the
  head of the reply's queue (:meth:`PlaybackBuffer.hold`); onset to silent speaker is as before;
* nothing goes up yet: the turn's audio (pre-roll included) is kept here;
* after ``settle_ms`` (the rest of the capture period that was under way, and the echo's tail
  in the room and in the sound server: 20-120 ms in the real-time bench with no canceller at
  all, where all of the device's voice comes back), ``speech_ms`` of speech within
  ``window_ms`` confirm
  it: the reply is cancelled and truncated at what was heard, and the kept audio goes up, so
  the server hears the person from their first syllable. Speech here is webrtcvad's verdict on
  a frame at most ``drop_db`` under the loudest of the turn so far (pre-roll included) and
  above ``floor_db``: webrtcvad keeps saying speech for a few hundred ms after a long stretch
  of it (its own hangover), digital silence included, and without a canceller that hangover
  alone can start a turn over the reply (two bench runs with no echo handling: 3 and 2 holds
  that started on digital silence were confirmed when only the last two frames were the onset);
* otherwise (or if the turn ends meanwhile) it is dismissed: the kept audio is dropped, the
  turn forgotten, and the reply plays on from where it was cut off, ~0.45 s later. A person's
  speech has gaps too ("go | forward": 120-160 ms between the words at their onset), hence
  the window: with 200 ms, 2 of 12 persons in a bench run were dismissed.

A hold overtaken before its verdict (``AudioPipeline.interrupt``) is dropped if the button or a
new conversation overtook it, and otherwise (a rotation, a reply timeout, the speaker
unplugged) reported as a barge-in with what was said sent up. It is decided on microphone
frames only: a stalled microphone keeps the reply silent until it is reopened.

Pure and frame-counted: :meth:`BargeHold.frame` takes the VAD's verdict of each frame after
the hold began.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from .turns import Actions


@dataclass(frozen=True)
class HoldSettings:
    frame_ms: int = 20
    settle_ms: int = 120
    window_ms: int = 300
    speech_ms: int = 40
    drop_db: float = 15.0
    floor_db: float = -70.0


class Verdict(enum.Enum):
    WAIT = "wait"
    CONFIRM = "confirm"
    DISMISS = "dismiss"


@dataclass
class BargeHold:
    """One talk-over under test, and what the turn taker decided meanwhile."""

    settings: HoldSettings = field(default_factory=HoldSettings)
    #: how loud the turn was when it started (dBFS, the loudest of its frames, pre-roll included)
    onset_db: float = 0.0
    kept: list[Actions] = field(default_factory=list)
    #: (webrtcvad's verdict, dBFS) of each frame since the hold began, for the log
    seen: list[tuple[bool, float]] = field(default_factory=list)
    frames: int = 0
    speech: int = 0

    def keep(self, actions: Actions) -> None:
        self.kept.append(actions)

    def frame(self, is_speech: bool, level_db: float, actions: Actions) -> Verdict:
        """A frame after the hold began (webrtcvad's verdict, its level), and the turn taker's
        actions for it."""
        s = self.settings
        self.keep(actions)
        self.seen.append((is_speech, level_db))
        self.frames += 1
        if actions.speech_ended:
            return Verdict.DISMISS          # the turn ended by itself: nobody went on talking
        if self.frames * s.frame_ms <= s.settle_ms:
            return Verdict.WAIT
        self.speech += is_speech and level_db >= max(self.onset_db - s.drop_db, s.floor_db)
        if self.speech * s.frame_ms >= s.speech_ms:
            return Verdict.CONFIRM
        if self.frames * s.frame_ms >= s.settle_ms + s.window_ms:
            return Verdict.DISMISS
        return Verdict.WAIT

    def trace(self) -> str:
        """The frames seen, as the log shows them: dBFS, * where webrtcvad said speech."""
        return " ".join(f"{db:.0f}{'*' if speech else ''}" for speech, db in self.seen)

    def merged(self) -> Actions:
        """Everything kept, as one delivery (the barge-in itself already carried out)."""
        out = Actions()
        for a in self.kept:
            out.send.extend(a.send)
            out.speech_started |= a.speech_started
            out.speech_ended |= a.speech_ended
            out.commit |= a.commit
            out.respond |= a.respond
            out.clear |= a.clear
            out.wake |= a.wake
        return out
