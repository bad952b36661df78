"""Is somebody talking over the device, or is it what the echo canceller left of its own voice?

Pure and frame-counted (time is the number of frames seen). Per 20 ms frame while the device
speaks it is given the frame's level after the canceller (``clean_db``), before it
(``raw_db``), the level of what the speaker played (``reference_db``) and webrtcvad's verdict.

Four checks, learned from the current reply (README "Echo cancellation"):

* **Is the canceller working?** AEC3 loses the echo when the echo path's delay changes (a
  paused output stream starts again with another latency, the device is moved) and takes
  hundreds of milliseconds to find it again; meanwhile the device's own voice comes through
  nearly whole and webrtcvad calls it speech. So a frame counts as a person only once the
  canceller has shown, in this reply, that it removes the echo: ``evidence_frames`` frames
  with a loud reply and an audible echo at the microphone, most of them attenuated by
  ``cancelling_db`` or more, or down to the room's own noise (a frame with speech after the
  canceller counts only for it: it may be a person). With no echo
  path at all (a headset, a muted loop) there is never an audible echo; after ``no_echo_ms`` of
  loud reply with the microphone (nearly) silent, it is trusted (with 800 ms a person who
  talked over a reply 0.75 s in was not heard; an echo path makes the microphone loud within
  its delay, which keeps this from trusting a canceller that lets the echo through).
  A reply that plays on after a held talk-over (:meth:`resumed`) comes out of a speaker stream
  that was aborted and started again when the hold began (its buffer dropped), so the echo's
  delay may have changed: what the canceller showed before no longer counts (a trace,
  2026-11-28: AEC3 passed the echo whole, 0-1 dB off, 0.2 s after such a resume, while still
  trusted; only the held frames' own level in the bar kept it from holding the reply again).
* **The room is not silent.** A fan, a fridge, a street: no canceller removes that, so a frame
  is evidence only where the microphone is ``above_noise_db`` over the room's noise (the echo
  is audible), and the echo counts as removed when what is left is within ``near_noise_db`` of
  that noise. The noise is measured before each reply (the quiet frames the caller gives
  :meth:`room`). Without this, -60 dBFS of room noise (a quiet room, a USB microphone's own
  hiss) kept the detector from ever trusting the canceller: nobody could talk over the device.
* **Is it louder than the residual?** What the canceller leaves varies with the room and the
  level; a frame must be ``margin_db`` above the loudest clean frame of the recent past
  (the last ``window_ms`` except the newest ``recent_ms``, so the person's own rising first
  syllable does not raise the bar), and above ``quiet_db``. What leaves that window is not
  forgotten at once: it keeps the bar at ``faded_margin_db`` from it, fading by
  ``fade_db_per_s``. AEC3 leaks the echo while it converges at the start of a reply and later
  leaves a residual, tens of dB quieter, that webrtcvad sometimes calls speech; with a bar that
  fell to ``quiet_db`` 600 ms after the leak, a -60 dBFS residual stopped a reply 700 ms after
  a -33 dBFS leak (a bench trace at -6 dB). Replayed through this bar, the traced frames of
  the bench runs of 2026-11-27 gave that self-interruption no more and every person's barge-in
  at the same frame. A frame the canceller took at most ``person_sure_db`` off needs only
  ``sure_margin_db`` over that residual (a leak that left the window holds the bar as before):
  where the canceller removes little (0 dB, -6 dB) the bar stood at -16 to -19 dBFS, and persons
  at the echo's level, whose first frames lost 1-3 dB, waited for it to fade. Replayed on the
  frame traces of 17 barge-ins of the real-time bench (2026-11-28), 5 were heard 20-80 ms
  sooner; the whole leaks the bar held back in the same runs lay within 1 dB of the residual
  (one right after a resume, see above).
* **Did the canceller leave it, or remove most of it?** A person talking over the reply is near
  end: the canceller passes their voice (it may hold back the first frame or two). A frame it
  took more than ``person_removed_db`` off is what it left of the echo, however loud after a
  loud echo: a -55 dBFS residual of a -25 dBFS echo (30 dB removed), 100 ms into the echo,
  before any residual had raised the bar, stopped a reply in a bench trace at -6 dB; so did a
  leak mid-reply that rose over four frames to -42 dBFS of a -23 dBFS echo (19-22 dB removed).
  A person at the echo's level lost 0-14 dB in the same traces (the canceller removes the echo
  under their voice, not the voice), and the first frame of each lost at most 11: a person
  starts with a frame taken at most ``person_whole_db`` off, and frames up to
  ``person_removed_db`` off go on being them. A leak before AEC3 had converged (0 dB, 0.3 s
  into a reply) still had 15-17 dB taken off when it was loudest. A person much quieter than
  the device's own echo at the microphone is not told from a leak.

The caller needs ``barge_in_ms`` of such frames in a row (turns.py) to stop the reply, or one
frame the canceller took at most ``person_sure_db`` off (:attr:`TalkOver.sure`): in the bench
traces of 15 runs a person's first frame often lost 0-3 dB, and no leak of a trusted canceller
lost less than 6 (since then: one whole leak right after a resume, which no longer has the
canceller's trust, and a 2-5 dB syllable mid-reply, which bargehold.py tells by its end). Two
frames straddle a capture period as often as not, so the second arrived 50 ms after the first;
replayed, stopping at such a frame took a median 137 -> 122 ms from a person's onset, with no
more self-interruptions; in the real-time bench (one run, nine barge-ins each, 2026-11-27) onset
to silent speaker 70-190 ms, mean 104, against 100-210, mean 145, without it; no
self-interruption in either.
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
    no_echo_ms: int = 400
    margin_db: float = 10.0
    sure_margin_db: float = 5.0
    quiet_db: float = -70.0
    fade_db_per_s: float = 20.0
    person_removed_db: float = 18.0
    person_whole_db: float = 13.0
    person_sure_db: float = 4.0
    faded_margin_db: float = -10.0
    above_noise_db: float = 10.0
    near_noise_db: float = 6.0
    room_frames: int = 100           # the quiet frames the room's noise is measured over (2 s)


class TalkOver:
    def __init__(self, settings: TalkOverSettings | None = None) -> None:
        self.settings = s = settings or TalkOverSettings()
        self._frames: deque[float] = deque(maxlen=s.window_ms // s.frame_ms)     # clean levels
        #: (frame number, cancelled?) of the latest evidence frames of this reply: kept while
        #: frames that say nothing (speech, quiet reply) go by
        self._evidence: deque[tuple[int, bool]] = deque(maxlen=s.window_ms // s.frame_ms)
        self._n = 0
        self._silent_path = 0          # frames of loud reply with no audible echo
        self._heard = 0                # frames of loud reply with the microphone above the room
        self._recent = s.recent_ms // s.frame_ms
        self._fade = s.fade_db_per_s * s.frame_ms / 1000
        self._memory = float("-inf")   # the loudest clean frame that left the window, fading
        self._room: deque[float] = deque(maxlen=s.room_frames)   # levels of quiet frames
        #: the room's noise (dBFS) as measured before this reply; None: not known
        self.noise_db: float | None = None
        self._audible = s.audible_db   # a microphone this loud hears more than the room
        self._streak = False           # the previous frame was a person
        #: the last frame was a person beyond doubt: the canceller took (almost) nothing off it
        self.sure = False

    def room(self, level_db: float) -> None:
        """A frame with nothing played and nobody talking: the room's own noise."""
        self._room.append(level_db)

    def reply_started(self) -> None:
        """A new reply: what the canceller showed before says nothing about now."""
        self._frames.clear()
        self._evidence.clear()
        self._memory = float("-inf")
        self._silent_path = self._heard = 0
        self._streak = self.sure = False
        s = self.settings
        if len(self._room) >= 10:
            # a low percentile: a door or a cough among the quiet frames does not raise it
            self.noise_db = sorted(self._room)[len(self._room) // 5]
            self._audible = max(s.audible_db, self.noise_db + s.above_noise_db)

    def resumed(self) -> None:
        """The reply plays on after a held talk-over: its speaker stream was aborted and started
        again at the hold, maybe with another delay. The canceller must show again that it
        removes the echo; the residual's bar stays (the same reply, the same room)."""
        self._evidence.clear()
        self._silent_path = self._heard = 0
        self._streak = self.sure = False

    def trusted(self) -> bool:
        """The canceller has shown in this reply that it removes the echo (or there is none)."""
        s = self.settings
        evidence = [ok for n, ok in self._evidence if n <= self._n - self._recent]
        if len(evidence) >= s.evidence_frames:
            return sum(evidence) >= s.trusted_share * len(evidence)
        # Too few frames to judge the canceller by. No echo path (a headset, a speaker far away,
        # a muted loop): trusted once the reply has been loud long enough with the microphone
        # mostly at the room's level; a stray frame above it (a person's first quiet sound, a
        # noise spike) does not stop that. A canceller that lets the echo through leaks what
        # webrtcvad calls speech (no evidence either way), but the microphone is loud all along.
        return self._silent_path * s.frame_ms >= s.no_echo_ms and self._heard * 4 <= self._silent_path

    def floor_db(self, margin_db: float | None = None) -> float:
        """How loud a frame must be to be more than the canceller's residual: ``margin_db``
        (default: the settings') over the loudest clean frame of the recent past; a leak that
        left that window still holds the bar at ``faded_margin_db`` from it, whatever the margin."""
        s = self.settings
        margin = s.margin_db if margin_db is None else margin_db
        older = list(self._frames)[:-self._recent] if self._recent else list(self._frames)
        return max([s.quiet_db, self._memory + s.faded_margin_db] + [clean + margin for clean in older])

    def person(self, clean_db: float, raw_db: float | None, reference_db: float, speech: bool) -> bool:
        """Record this frame; whether it is a person talking over the reply. ``raw_db`` None:
        the canceller did not run on this frame (nothing was taken off, nor left whole)."""
        s = self.settings
        ran = raw_db is not None
        raw_db = clean_db if raw_db is None else raw_db
        removed = raw_db - clean_db
        whole = ran and removed <= s.person_sure_db   # left whole: above the residual is enough
        bar = self.floor_db(s.sure_margin_db if whole else None)
        verdict = (speech and clean_db >= bar and removed <= s.person_removed_db
                   and (removed <= s.person_whole_db or self._streak) and self.trusted())
        self._streak = verdict
        self.sure = verdict and whole
        # A frame webrtcvad calls speech is evidence only for the canceller: a person talking
        # over the reply (not yet heard as one) must not count against it, or the device would
        # stop trusting it exactly while somebody talks; and a canceller that lost the echo leaks
        # speech-like frames, which build no trust. But an audible echo taken down by
        # ``cancelling_db``, speech or not, shows it works: a reply whose first frames leaked
        # (AEC3 converging) kept webrtcvad saying speech until a person talked over it, and with
        # no evidence the person was never heard (3 of 12 barge-ins of a bench run at -6 and
        # 0 dB, 2026-11-27; replayed with this, heard 130-180 ms after their onset).
        if reference_db > s.loud_reference_db:
            audible = raw_db > self._audible
            self._heard += audible
            if audible:
                noise = self.noise_db
                cancelled = removed >= s.cancelling_db or (noise is not None and clean_db <= noise + s.near_noise_db)
                if cancelled or not speech:
                    self._evidence.append((self._n, cancelled))
            elif not speech:
                self._silent_path += 1
        frames = self._frames
        leaving = frames[0] if len(frames) == frames.maxlen else float("-inf")
        self._memory = max(self._memory - self._fade, leaving)
        frames.append(clean_db)
        self._n += 1
        return verdict
