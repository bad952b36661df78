"""Is somebody talking over the device, or is it what the echo canceller left of its own voice?

Pure and frame-counted (time is the number of frames seen). Per 20 ms frame while the device
speaks it is given the frame's level after the canceller (``clean_db``), before it
(``raw_db``), the level of what the speaker played (``reference_db``) and webrtcvad's verdict.

Two checks, both learned from the current reply (README "Echo cancellation"):

* **Is the canceller working?** AEC3 loses the echo when the echo path's delay changes (a
  paused output stream starts again with another latency, the device is moved) and takes
  hundreds of milliseconds to find it again; meanwhile the device's own voice comes through
  nearly whole and webrtcvad calls it speech. So a frame counts as a person only once the
  canceller has shown, in this reply, that it removes the echo: ``evidence_frames`` frames
  with a loud reply, an audible echo at the microphone and no speech after the canceller, most
  of them attenuated by ``cancelling_db`` or more. With no echo path at all (a headset, a muted loop) there is
  never an audible echo; after ``no_echo_ms`` of loud reply without one, it is trusted.
* **Is it louder than the residual?** What the canceller leaves varies with the room and the
  level; a frame must be ``margin_db`` above the loudest clean frame of the recent past
  (the last ``window_ms`` except the newest ``recent_ms``, so the person's own rising first
  syllable does not raise the bar), and above ``quiet_db``.

The caller needs ``barge_in_ms`` of such frames in a row (turns.py) to stop the reply.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True)
class TalkOverSettings:
    frame_ms: int = 20
    window_ms: int = 600
    recent_ms: int = 100
    evidence_frames: int = 5
    trusted_share: float = 0.7
    cancelling_db: float = 20.0
    loud_reference_db: float = -40.0
    audible_db: float = -60.0
    no_echo_ms: int = 800
    margin_db: float = 10.0
    quiet_db: float = -70.0


class TalkOver:
    def __init__(self, settings: TalkOverSettings | None = None) -> None:
        self.settings = s = settings or TalkOverSettings()
        self._frames: deque[float] = deque(maxlen=s.window_ms // s.frame_ms)     # clean levels
        #: (frame number, cancelled?) of the latest evidence frames of this reply: kept while
        #: frames that say nothing (speech, quiet reply) go by
        self._evidence: deque[tuple[int, bool]] = deque(maxlen=s.window_ms // s.frame_ms)
        self._n = 0
        self._silent_path = 0          # frames of loud reply with no audible echo
        self._recent = s.recent_ms // s.frame_ms

    def reply_started(self) -> None:
        """A new reply: what the canceller showed before says nothing about now."""
        self._frames.clear()
        self._evidence.clear()
        self._silent_path = 0

    def trusted(self) -> bool:
        """The canceller has shown in this reply that it removes the echo (or there is none)."""
        s = self.settings
        evidence = [ok for n, ok in self._evidence if n <= self._n - self._recent]
        if len(evidence) >= s.evidence_frames:
            return sum(evidence) >= s.trusted_share * len(evidence)
        return not evidence and self._silent_path * s.frame_ms >= s.no_echo_ms

    def floor_db(self) -> float:
        """How loud a frame must be to be more than the canceller's residual."""
        s = self.settings
        older = list(self._frames)[:-self._recent] if self._recent else list(self._frames)
        return max([s.quiet_db] + [clean + s.margin_db for clean in older])

    def person(self, clean_db: float, raw_db: float, reference_db: float, speech: bool) -> bool:
        """Record this frame; whether it is a person talking over the reply."""
        s = self.settings
        verdict = speech and clean_db >= self.floor_db() and self.trusted()
        # Evidence comes from frames webrtcvad does not call speech: a person talking over the
        # reply (not yet heard as one) must not count against the canceller, or the device
        # would stop trusting it exactly while somebody talks. A canceller that lost the echo
        # leaks speech-like frames: those are not evidence either way (no trust is built on them).
        if reference_db > s.loud_reference_db and not speech:
            if raw_db > s.audible_db:
                self._evidence.append((self._n, raw_db - clean_db >= s.cancelling_db))
            else:
                self._silent_path += 1
        self._frames.append(clean_db)
        self._n += 1
        return verdict
