"""The audio pipeline: it only does audio. Frames in, turn decisions out; reply audio in,
samples to the speaker out. It knows nothing of protocols or sessions.

    microphone (its own rate) -> FrontEnd (mono, one resampler to 16 kHz, echo canceller)
        -> webrtcvad, wake word -> TurnTaker (wake gate, turn mode, echo guard)
        -> what is sent: 16 -> 24 kHz (Uplink) -> listener.turn(actions)
    play(item, 24 kHz pcm) -> gain -> resample once, to the speaker's rate -> PlaybackBuffer
        -> speaker.read (its own thread) -> listener.playback_started / playback_drained
                                          -> the echo canceller's reference (16 kHz, stamped)

The microphone's rate is set when it opens (:meth:`mic_opened`), the speaker's likewise
(:meth:`speaker_opened`). With no speaker, reply audio is dropped (counted) and a finished
reply "drains" at once, so the device never waits for a sound card it does not have.

Barge-in on the device's own detection: when the turn taker hears the person over the reply
(the VAD on the echo-cancelled microphone, or the wake word), the speaker goes silent here, at
once. A wake word (or the button) cancels the reply then and there; the VAD's talk-over is
held until the person goes on talking into the silence (bargehold.py: the echo canceller's
rare leak is not a person, and the reply plays on). Then playback is flushed and the listener
is told what was played of each item (``barged_in``) before it gets the turn's audio.

The echo canceller's reference is what the speaker's thread takes from :meth:`read`, stamped
with the time it took it: the device's own voice, the moment it leaves for the speaker. The
canceller finds the delay to the microphone itself (aec.py).

Notices from the speaker's thread cross into the loop through ``post`` (the one bridge,
:class:`hardware.bridge.LoopBridge`); nothing is polled.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from hardware.interfaces import Gap

from .aec import EchoCanceller
from .bargehold import BargeHold, HoldSettings, Verdict
from .frontend import VAD_RATE, FrontEnd, StreamClock, Uplink
from .listener import AudioCounters, AudioListener
from .playback import PlaybackBuffer, unheard
from .resample import StreamResampler
from .turns import Actions, EchoGuard, TurnMode, TurnTaker
from .vad import WebRtcVad, level_db
from .wake import SpeechOnlyWake, StopWord, WakeHook, WakeWordDetector, earcon_tone

logger = logging.getLogger(__name__)
API_RATE = 24000
#: While the echo canceller works, quieter frames are not speech (its residual and comfort
#: noise sit near -60 dBFS; a person at the level of the device's echo is far above).
AEC_SPEECH_FLOOR_DB = -52.0
EARCON = "earcon"   # the playback item of the wake word's tone (no conversation item)
#: After this long with nothing played and nobody talking, the microphone hands over
#: ``[audio] idle_period_ms`` at a time; reply audio brings back ``mic_period_ms`` (a person
#: talking over it is heard within one short period). A turn keeps its period: the end of
#: speech reaches the server half of it late on average (README "Audio": the trade, measured).
IDLE_AFTER_S = 5.0
IDLE_PERIOD_MS = 150


class AudioPipeline:
    def __init__(self, turns: TurnTaker, *, prebuffer_ms: int = 80, max_playback_ms: int = 120_000,
                 vad: WebRtcVad | None = None, post: Callable[..., None] | None = None,
                 clock: Callable[[], float] = time.monotonic, canceller: EchoCanceller | None = None,
                 wake: WakeWordDetector | None = None, mic_period_ms: int = 50,
                 idle_period_ms: int = IDLE_PERIOD_MS,
                 stop: WakeWordDetector | None = None, echo_guard: EchoGuard = EchoGuard.GUARDED) -> None:
        self.turns = turns
        self.canceller = canceller
        self.echo_guard = echo_guard    # what decides if the canceller fails ([audio] echo_guard)
        self.failed_canceller: EchoCanceller | None = None
        self.standing_in = False        # the periods are the silence standing in (hardware/standin.py)
        #: the wake word runs only around speech (wake.SpeechOnlyWake): silence costs nothing
        self.wake = SpeechOnlyWake(wake) if wake is not None else None
        self.stop_word = StopWord(stop) if stop is not None else None   # only while it speaks
        #: told when the wake word is heard (the app publishes "wake" on the bus)
        self.on_wake: WakeHook | None = None
        #: told when reply audio is queued (the speaker resumes a paused stream)
        self.wake_speaker: Callable[[], None] = lambda: None
        #: how long until what the speaker takes now is heard (its buffer; hardware.audio.Speaker.lead_s)
        self.speaker_lead: Callable[[], float] = lambda: 0.0
        #: what the speaker was handed that nobody has heard yet (Speaker.unheard_s): given back at
        #: a talk-over, not counted as played at a barge-in
        self.speaker_unheard: Callable[[], float] = lambda: self.speaker_lead()
        #: told to drop what the speaker's buffer holds (an interruption: silent now)
        self.hush_speaker: Callable[[], None] = lambda: None
        #: told how much audio the microphone should hand over at a time (ms), when that changes
        self.set_mic_period: Callable[[int], None] = lambda ms: None
        self.after_period: Callable[[float], None] = lambda now: None   # each period's time: the LEDs draw
        self.mic_period_ms = mic_period_ms
        self.idle_period_ms = max(mic_period_ms, idle_period_ms)
        self._period = mic_period_ms
        self._busy_at = clock()
        self.vad = vad or WebRtcVad(turns.segmenter.settings.aggressiveness)
        #: how a talk-over by voice is confirmed (bargehold.py); None: the reply stops outright
        self.hold_settings: HoldSettings | None = HoldSettings(frame_ms=turns.frame_ms)
        self._hold: BargeHold | None = None
        self.prebuffer_ms = prebuffer_ms
        self.max_playback_ms = max_playback_ms
        #: how a notice from the speaker's thread reaches the loop (LoopBridge.post)
        self.post: Callable[..., None] = post or (lambda fn, *args: fn(*args))
        self.clock = clock
        self.listener: AudioListener | None = None
        self.counters = AudioCounters()
        self.frontend: FrontEnd | None = None
        self.playback: PlaybackBuffer | None = None
        self._down: StreamResampler | None = None
        self._ref: StreamResampler | None = None       # speaker rate -> 16 kHz (reference)
        self._uplink = Uplink()
        self.last_reference = float("-inf")            # when the speaker last took audio
        self._last_item: str | None = None
        self.gain = 1.0  # output volume as a linear factor (set_volume)
        self.last_frame_at = 0.0  # monotonic: when the microphone last delivered (the watchdog)
        self.last_barge_in: dict[str, Any] | None = None

    # ---------------------------------------------------------------- devices
    def mic_opened(self, rate: int, channels: int, stand_in: bool = False) -> None:
        """The microphone opened at ``rate`` (or, ``stand_in``, the silence in its place)."""
        self.standing_in = stand_in
        if self._hold is not None:   # (re)opened during a hold: nothing heard since; play on
            self._dismiss()
        canceller = None if stand_in else self.canceller   # no echo in the silence standing in
        self.frontend = FrontEnd(rate, channels, frame_ms=self.turns.frame_ms, canceller=canceller)
        if canceller is not None:   # another stream: its first frame anchors the reference anew,
            canceller.mic_restarted()
        if self.turns.talk_over is not None:   # and the canceller shows anew that it removes the echo
            self.turns.talk_over.resumed()
        self._mic_clock = StreamClock(rate)
        self._mic_channels = channels

    def speaker_opened(self, rate: int) -> None:
        """The speaker is open at ``rate``: reply audio is resampled once, to that rate."""
        if self.playback is not None and self.playback.rate == rate:
            return
        self.flush()
        self.playback = PlaybackBuffer(rate, prebuffer_ms=self.prebuffer_ms, max_ms=self.max_playback_ms,
                                       notice=self._notice_from_reader)
        self._down = None if rate == API_RATE else StreamResampler(API_RATE, rate)
        self._ref = StreamResampler(rate, VAD_RATE) if self.canceller is not None else None

    def speaker_closed(self) -> None:
        """No speaker (missing, unplugged): drop what was queued; replies drain at once."""
        if self._hold is not None:   # no reply to go back to: a barge-in, and what was said goes up
            self.interrupt("voice")
        if self.playback is not None and self.playback.active:
            self.playback.flush()
            self._post_drained()
        self.playback = None
        self._down = None

    def read(self, nbytes: int) -> bytes:
        """What the speaker plays next (its thread): mono PCM16 at its rate. What it takes is
        the echo canceller's reference, stamped with when it will be heard (now, plus what the
        speaker's buffer holds before it). During a reply the reference is exactly what the
        speaker plays: a short read (the network was late) is padded with the silence the
        speaker pads it with; else the reference slid earlier than the sound by every
        underrun, the canceller's delay jumped and the device's voice leaked for a while."""
        playback = self.playback
        pcm = playback.read(nbytes) if playback is not None else b""
        ref, canceller = self._ref, self.canceller
        if ref is not None and canceller is not None and playback is not None:
            now = self.clock() + self.speaker_lead()
            if pcm or playback.active:
                played = pcm + bytes(nbytes - len(pcm)) if len(pcm) < nbytes else pcm
                # Stamped by its end: the resampler releases samples in bursts.
                ref16 = ref.process(np.frombuffer(played, "<i2"))
                end = now + len(played) / 2 / playback.rate
                canceller.reference(ref16, end - len(ref16) / VAD_RATE)
            if pcm:
                self.last_reference = now
            elif not playback.active and now - self.last_reference < 0.1:
                tail = ref.flush()       # the end of a reply: what the filter still holds
                if len(tail):
                    canceller.reference(tail, now - len(tail) / VAD_RATE)
        return pcm

    def set_volume(self, percent: int) -> None:
        """0..100; squared, so equal steps sound roughly equal."""
        self.gain = (max(0, min(100, percent)) / 100) ** 2

    # ------------------------------------------------------------------ uplink
    def _without_canceller(self, frontend: FrontEnd) -> None:
        """The canceller failed mid-run (aec.py logged why): go on as with ``echo_cancel = "off"``."""
        self.failed_canceller, self.canceller, frontend.canceller, self._ref = self.canceller, None, None, None
        self.turns.without_canceller(self.echo_guard)

    def on_mic(self, pcm: bytes, gap: int = Gap.NONE) -> None:
        """One capture period, on the loop (via the bridge); ``gap``: what came before it."""
        now = self.last_frame_at = self.clock()
        if gap == Gap.OVERFLOW:
            self.counters.overflows += 1
        if self.frontend is None:
            return
        playback = self.playback
        cancelled = self.frontend.canceller is not None and now - self.last_reference <= self.frontend.aec_hold_s
        at = self._mic_clock.stamp(now, len(pcm) // (2 * self._mic_channels), reset=bool(gap))
        frontend = self.frontend
        frames = frontend.frames(pcm, at=at, last_reference=self.last_reference, restarted=bool(gap))
        if self.canceller is not None and self.canceller.failed:
            self._without_canceller(frontend)
        self.counters.stand_in_frames += len(frames) if self.standing_in else 0
        self.counters.mic_frames += 0 if self.standing_in else len(frames)
        for i, pcm16 in enumerate(frames):
            speech = self.vad.is_speech(pcm16)
            held = self._hold is not None   # a talk-over on hold: the speaker is silent, the reply waits
            playing = playback is not None and playback.active and not held
            if speech and cancelled and not playing and not held and level_db(pcm16) < AEC_SPEECH_FLOOR_DB:
                speech = False   # the echo's tail after a reply: the canceller's residual and comfort noise
            self.counters.speech_frames += speech
            heard = False
            if self.stop_word is not None and self.stop_word.process(pcm16, speech, (playing or held)
                                                                     and not self.turns.muted):
                self.interrupt("stop_word")   # the reply stops; nothing of the word goes up (but
                self.turns.stopped()
                if self.turns.mode is not TurnMode.CONTINUOUS:   # GPT-Live hears every frame)
                    continue
            if self.wake is not None and not self.turns.muted:
                heard = self.wake.process(pcm16, speech).detected
            actions = self.turns.frame(pcm16, speech, playing=playing, now=now, wake=heard,
                                       reference_db=playback.reference_db() if playing and playback else -90.0,
                                       raw_db=frontend.raw_db[i] if frontend.raw_db else None)
            if held:
                self._held_frame(speech, level_db(pcm16), actions)
            elif actions:
                self.deliver(actions)
        self._pick_period(now)
        self.after_period(now)

    def _pick_period(self, now: float) -> None:
        """The microphone's period: short while anything happens, long after IDLE_AFTER_S of nothing."""
        turns = self.turns
        if self.speaking or turns.talking or turns.segmenter.in_speech:
            self._busy_at = now
        want = self.mic_period_ms if self.speaking else self._period
        if now - self._busy_at >= IDLE_AFTER_S:
            want = self.idle_period_ms
        if want != self._period:
            self._period = want
            self.set_mic_period(want)

    def deliver(self, actions: Actions) -> None:
        """Carry out the turn taker's decision: interrupt, tell of the wake word, convert what
        is sent to the API's rate, hand the rest to the listener (also for the button's turns)."""
        if actions.wake:
            self._heard_wake_word()
        if actions.speech_started or actions.wake:
            # A reply may follow: a paused output stream takes a few hundred ms to start on
            # some stacks (PortAudio primes it), so start it now, not at the first delta.
            self.wake_speaker()
        if actions.barge_in:
            if actions.barge_cause == "voice" and self._hold_talk_over(actions):
                return
            self.interrupt(actions.barge_cause)
        if actions.send:
            up = self._uplink.convert(actions.send, new_turn=actions.speech_started or actions.clear,
                                      end=actions.speech_ended or actions.commit)
            actions.send = [up] if up else []
            self.counters.bytes_sent += len(up)
        if self.listener is not None and (actions.send or actions.speech_started or actions.speech_ended
                                          or actions.commit or actions.respond or actions.clear):
            self.listener.turn(actions)

    def _hold_talk_over(self, actions: Actions) -> bool:
        """Silence the reply and keep the turn until it is confirmed (bargehold.py)."""
        playback = self.playback
        if self.hold_settings is None or playback is None:
            return False
        playback.hold(int(1000 * self.speaker_unheard()))
        if not playback.held:
            return False
        self.hush_speaker()
        onset = max((level_db(f) for f in actions.send), default=-90.0)   # pre-roll included
        self._hold = BargeHold(self.hold_settings, onset_db=onset)
        self._hold.keep(actions)
        return True

    def _held_frame(self, speech: bool, frame_db: float, actions: Actions) -> None:
        hold = self._hold
        assert hold is not None
        verdict = Verdict.DISMISS if self.turns.muted else hold.frame(speech, frame_db, actions)
        if verdict is Verdict.WAIT:
            return
        if verdict is Verdict.CONFIRM:
            logger.info("talk-over confirmed (onset %.0f dBFS; frames since: %s)", hold.onset_db, hold.trace())
            self.interrupt("voice")      # ends the hold: the barge-in, then what was kept goes up
            return
        logger.info("talk-over dismissed (onset %.0f dBFS; frames since: %s): the reply plays on", hold.onset_db,
                    hold.trace())
        self._dismiss()

    def _dismiss(self) -> None:
        self._hold = None
        self.turns.dismiss(reply_plays_on=True)
        if self.playback is not None:
            self.playback.resume()
            self.wake_speaker()          # a speaker that paused meanwhile (a stalled microphone)
        self.counters.talk_over_dismissed += 1

    def _heard_wake_word(self) -> None:
        self.counters.wake_words += 1
        detector = self.wake
        word, score = (detector.word, detector.score) if detector is not None else ("button", 1.0)
        if self.on_wake is not None:
            self.on_wake(word, score)
        wake_word = getattr(self.listener, "wake_word", None)
        if callable(wake_word):
            wake_word()   # a manager that wants to know (GPT-Live connects on demand)

    @property
    def speaking(self) -> bool:
        """Reply audio is queued or playing."""
        return self.playback is not None and self.playback.active

    # ---------------------------------------------------------------- downlink
    def play(self, item_id: str, pcm24: bytes) -> None:
        """Queue reply audio (24 kHz mono PCM16) of ``item_id``."""
        if self.playback is None:
            self.counters.bytes_dropped_no_speaker += len(pcm24)
            return
        samples = np.frombuffer(pcm24, "<i2")
        if self.gain != 1.0:
            samples = (samples.astype(np.float32) * self.gain).astype("<i2")
        if self._down is not None:
            samples = self._down.process(samples)
        self.counters.bytes_played += len(pcm24)
        self._last_item = item_id
        self.playback.push(item_id, samples.tobytes())
        self.wake_speaker()
        self._pick_period(self.clock())

    def earcon(self) -> None:
        """A short soft tone (the wake word was heard), unless the device is speaking."""
        if self.playback is None or self.speaking:
            return
        self.playback.push(EARCON, earcon_tone(self.playback.rate, self.gain))
        self.playback.finish()
        self.wake_speaker()

    def finish(self) -> None:
        """No more audio for now: play out what is queued (with no speaker: drained now)."""
        if self.playback is None:
            self._post_drained()
            return
        if self._down is not None and self._last_item is not None:
            # the resampler holds the last few milliseconds back: they belong to this reply
            self.playback.push(self._last_item, self._down.flush().tobytes())
        self.playback.finish()

    def flush(self) -> dict[str, int]:
        """Stop playing now; the milliseconds the speaker got of each item, in play order."""
        if self._hold is not None:      # a held talk-over overtaken (the speaker reopened at another rate)
            self._hold = None
            self.turns.dismiss(reply_plays_on=False)
        if self.playback is None:
            return {}
        if self._down is not None:
            self._down.reset()   # the cut-off reply's tail must not start the next one
        return self.playback.flush()

    def interrupt(self, cause: str) -> dict[str, int]:
        """Stop the reply now (the person talked over it, the button, a new conversation):
        what the speaker's buffer holds is dropped too, and not counted as played. During a
        held talk-over (or at its confirmation) that was done when the speaker went silent."""
        hold, self._hold = self._hold, None
        played = self.flush() if hold is not None else unheard(self.flush(), int(1000 * self.speaker_unheard()))
        if hold is None:
            self.hush_speaker()
        if cause == "voice":
            self.counters.local_barge_ins += 1
        self.last_barge_in = {"cause": cause, "played_ms": played, "flushed_at": self.clock()}
        if self.listener is not None:
            self.listener.barged_in(cause, played)
        if hold is not None:   # confirmed, or overtaken: the person's own stop drops it, anything else sends it
            if cause in ("button", "new_conversation", "stop_word"):
                self.turns.dismiss(reply_plays_on=False)
            else:
                self.deliver(hold.merged())
        return played

    # -------------------------------------------------- notices from the reader
    def _notice_from_reader(self, kind: str, item_id: str | None) -> None:
        self.post(self._deliver_notice, kind, item_id)

    def _post_drained(self) -> None:
        self.post(self._deliver_notice, "drained", None)

    def _deliver_notice(self, kind: str, item_id: str | None) -> None:
        """On the loop. A drain is stale if new audio arrived since the reader saw the end."""
        if self.listener is None:
            return
        if kind == "started" and item_id is not None and item_id != EARCON:
            self.listener.playback_started(item_id)
        elif kind == "drained" and not self.speaking:
            self.listener.playback_drained()

