"""What goes up, per 20 ms microphone frame, in each turn mode. Pure: returns actions.

* ``server_vad``: the server decides turns. Speech (with pre-roll) is streamed; the hangover
  is the server's ``silence_duration_ms`` plus a margin, so the server still hears the silence
  it needs to end the turn; longer silence is held back.
* ``local_vad``: ``turn_detection`` is off; the local end of speech commits the buffer and asks
  for a response, which saves the server-side silence wait.
* ``push_to_talk``: stream while the button is held, from the moment of the press (the ring
  buffer reaches back past the hold delay); commit on release, unless under 100 ms (the server
  rejects such commits: ``input_audio_buffer_commit_empty``), in which case the buffer is cleared.

While the device is speaking, the echo guard decides whether the person barged in:
``half_duplex`` ignores the microphone (barge in with the button), ``guarded`` (default)
requires speech clearly louder than the echo of our own playback for ``barge_in_min_ms``,
``off`` trusts the VAD alone (the choice with an echo canceller in front: the frames are
already clean). Mic audio during playback is not sent unless it barged in, so the server's VAD
never hears our own voice and cancels its own reply.

With a wake word (:class:`~device.audio.wakegate.WakeGate`), frames reach the gate only while
it is open; the detector's verdict comes in with each frame (``wake``), time as ``now``. In
``push_to_talk`` a wake word opens a hands-free turn that the local VAD ends (as ``local_vad``).

* ``continuous`` (GPT-Live): every frame goes up, silence included, because the model takes
  turns itself and needs the silence (and its output is paced by the input). The VAD still
  reports ``speech_started``/``speech_ended`` (LEDs, connect on demand, talk-over), but never
  ``barge_in``: the model stops by itself and the conversation core decides when to flush.
  Muted (and with ``half_duplex`` while the device speaks) the frames go up as digital silence.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from .talkover import TalkOver
from .vad import SpeechSegmenter, VadSettings, level_db
from .wakegate import WakeGate

MIN_COMMIT_MS = 100
SERVER_SILENCE_MARGIN_MS = 300
AEC_BARGE_IN_MS = 40     # with an echo canceller: this much of a person over the reply stops it, or one
#                          frame the canceller left (nearly) whole (talkover.py)


class TurnMode(enum.StrEnum):
    SERVER_VAD = "server_vad"
    LOCAL_VAD = "local_vad"
    PUSH_TO_TALK = "push_to_talk"
    CONTINUOUS = "continuous"


class EchoGuard(enum.StrEnum):
    HALF_DUPLEX = "half_duplex"
    GUARDED = "guarded"
    OFF = "off"


@dataclass
class Actions:
    send: list[bytes] = field(default_factory=list)
    speech_started: bool = False
    speech_ended: bool = False
    barge_in: bool = False
    commit: bool = False
    respond: bool = False
    clear: bool = False
    wake: bool = False            # the wake word was heard on this frame
    barge_cause: str = "voice"    # why barge_in: "voice" (the VAD) or "wake" (the wake word)

    def __bool__(self) -> bool:
        return bool(self.send or self.speech_started or self.speech_ended or self.barge_in
                    or self.commit or self.respond or self.clear or self.wake)


class TurnTaker:
    def __init__(self, mode: TurnMode, vad: VadSettings | None = None, *, server_silence_ms: int = 500,
                 echo_guard: EchoGuard = EchoGuard.GUARDED, hold_s: float = 0.5,
                 gate: WakeGate | None = None, talk_over: TalkOver | None = None) -> None:
        self.mode = TurnMode(mode)
        self.gate = gate
        #: With an echo canceller: tells a person over the reply from the canceller's residual
        #: (README "Echo cancellation").
        self.talk_over = talk_over
        self.echo_guard = EchoGuard(echo_guard)
        vad = vad or VadSettings()
        if self.mode is TurnMode.SERVER_VAD:
            vad = VadSettings(**{**vad.__dict__, "hangover_ms": server_silence_ms + SERVER_SILENCE_MARGIN_MS})
        preroll = max(vad.preroll_ms, int(hold_s * 1000) + 200) if self.mode is TurnMode.PUSH_TO_TALK else None
        self.segmenter = SpeechSegmenter(vad, preroll_ms=preroll)
        self.frame_ms = vad.frame_ms
        self.muted = False
        self.talking = False          # push-to-talk held
        self.turn_ms = 0              # audio sent in the current turn
        self.bytes_sent = 0
        self._was_playing = False

    def without_canceller(self, echo_guard: EchoGuard) -> None:
        """The echo canceller stopped working: its own voice reaches the microphone again, so
        the echo guard decides, as with ``echo_cancel = "off"`` (no talk-over detection)."""
        self.echo_guard = EchoGuard(echo_guard)
        self.talk_over = None

    def _sending(self, frames: list[bytes] | tuple[bytes, ...]) -> list[bytes]:
        self.turn_ms += len(frames) * self.frame_ms
        self.bytes_sent += sum(len(f) for f in frames)
        return list(frames)

    def frame(self, pcm24: bytes, is_speech: bool, *, playing: bool = False, reference_db: float = -90.0,
              now: float = 0.0, wake: bool = False, raw_db: float | None = None) -> Actions:
        """One frame (of whatever rate the caller sends: the pipeline uses 16 kHz). ``raw_db``:
        its level before the echo canceller (with one)."""
        if self.mode is TurnMode.CONTINUOUS:
            return self._continuous(pcm24, is_speech, playing=playing, reference_db=reference_db)
        if self.muted:
            return Actions()
        if self.talking:
            return Actions(send=self._sending([pcm24]))
        gate = self.gate
        hands_free = gate is not None and self.mode is TurnMode.PUSH_TO_TALK and gate.is_open(now)
        if self.mode is TurnMode.PUSH_TO_TALK and not hands_free and not (wake and gate is not None):
            self.segmenter.frame(pcm24, False)  # only feeds the ring buffer
            return Actions()
        if gate is not None:
            held = self._gated(gate, pcm24, now, playing=playing, wake=wake)
            if held is not None:
                return held
        actions = self._vad_frame(pcm24, is_speech, playing=playing, reference_db=reference_db,
                                  local=hands_free or self.mode is TurnMode.LOCAL_VAD, raw_db=raw_db)
        if gate is not None and actions.speech_started:
            gate.turn_started(now)
        if gate is not None and actions.speech_ended:
            gate.turn_ended(now)
        return actions

    def _gated(self, gate: WakeGate, pcm: bytes, now: float, *, playing: bool, wake: bool) -> Actions | None:
        """Actions when the wake gate keeps this frame from the VAD; None when it passes."""
        in_speech = self.segmenter.in_speech
        if wake and (playing or not in_speech):
            gate.wake(now)
            # The word itself is not sent: keep only what followed it (see wakegate.py).
            self.segmenter.keep_last(gate.settings.keep_ms)
            self.segmenter.frame(pcm, False)
            return Actions(wake=True, barge_in=playing, barge_cause="wake")
        if playing and not in_speech:
            # Only the wake word (or the button) interrupts the device: nothing else in the
            # room (a television) can, and nothing is sent while it speaks.
            gate.playing(now)
            self.segmenter.frame(pcm, False)
            return Actions()
        if not gate.is_open(now) and not in_speech:
            self.segmenter.frame(pcm, False)
            # woken but nobody talked: the LEDs leave "listening"
            return Actions(speech_ended=gate.expired(now))
        return None

    def _vad_frame(self, pcm24: bytes, is_speech: bool, *, playing: bool, reference_db: float,
                   local: bool, raw_db: float | None) -> Actions:
        if playing and self.echo_guard is EchoGuard.HALF_DUPLEX:
            self.segmenter.reset()
            return Actions()
        start_ms: int | None = None
        talk_over = self.talk_over
        if talk_over is not None and not playing and not is_speech and not self.segmenter.in_speech:
            talk_over.room(level_db(pcm24))
        if playing and talk_over is not None:
            if not self._was_playing:
                talk_over.reply_started()
            # Also in the hangover of a turn that began before the reply: the canceller's
            # residual must not keep that turn going (its audio goes to the server's VAD).
            clean = level_db(pcm24)
            is_speech = talk_over.person(clean, raw_db, reference_db, is_speech)
            if not self.segmenter.in_speech:
                # one frame is enough only when the canceller ran on it and left it whole
                start_ms = talk_over.settings.frame_ms if talk_over.sure else AEC_BARGE_IN_MS
        was_speaking = self.segmenter.in_speech
        strict = playing and self.echo_guard is EchoGuard.GUARDED and not was_speaking
        if playing and not self._was_playing:
            # Every reply learns its own echo, also one that starts while the person's turn
            # is still in its hangover (the learning then begins when the turn ends).
            self.segmenter.playback_started()
        self._was_playing = playing
        result = self.segmenter.frame(pcm24, is_speech, strict=strict, reference_db=reference_db, start_ms=start_ms)
        send = result.send
        if send and playing and talk_over is not None and was_speaking and not is_speech:
            # The person has stopped and the reply plays: the rest of their turn's trailing
            # silence is what the microphone hears of the device itself, which AEC3 lets through
            # while it converges at the start of a reply. Sent, the server's VAD heard it as
            # speech and cancelled the reply (bench, 0 dB). The person said nothing: send that.
            send = tuple(bytes(len(f)) for f in send)
        actions = Actions(send=self._sending(send) if send else [])
        if result.started:
            self.turn_ms = len(result.send) * self.frame_ms
            actions.speech_started = True
            actions.barge_in = playing
        if result.ended:
            actions.speech_ended = True
            if local and self.turn_ms >= MIN_COMMIT_MS:
                actions.commit = actions.respond = True
        return actions

    def _continuous(self, pcm24: bytes, is_speech: bool, *, playing: bool, reference_db: float) -> Actions:
        if self.muted or (playing and self.echo_guard is EchoGuard.HALF_DUPLEX):
            # Muted, or half duplex while the device speaks (no echo of its own voice reaches the model).
            self.segmenter.reset()
            return Actions(send=self._sending([bytes(len(pcm24))]))
        was_speaking = self.segmenter.in_speech
        strict = playing and self.echo_guard is not EchoGuard.OFF and not was_speaking
        if strict and not self._was_playing:
            self.segmenter.playback_started()
        self._was_playing = playing
        result = self.segmenter.frame(pcm24, is_speech, strict=strict, reference_db=reference_db)
        return Actions(send=self._sending([pcm24]), speech_started=result.started, speech_ended=result.ended)

    # ------------------------------------------------------------------ push-to-talk
    def press(self, held_for_ms: int) -> Actions:
        """The button is held (HOLD_START): send what was said since the press, then stream."""
        if self.muted or self.talking:
            return Actions()
        self.talking = True
        frames = self.segmenter.preroll()
        keep = min(len(frames), max(1, held_for_ms // self.frame_ms + 1))
        self.turn_ms = 0
        self.segmenter.reset()
        return Actions(send=self._sending(frames[-keep:]), speech_started=True, clear=True)

    def release(self) -> Actions:
        if not self.talking:
            return Actions()
        self.talking = False
        if self.turn_ms < MIN_COMMIT_MS:
            return Actions(speech_ended=True, clear=True)
        return Actions(speech_ended=True, commit=True, respond=True)

    def dismiss(self, *, reply_plays_on: bool) -> None:
        """The turn that started over the reply is dropped (bargehold.py): it was not a person,
        or the reply was stopped otherwise. Its audio never went up: nothing to clear at the server."""
        self.segmenter.reset()
        self.turn_ms = 0
        # The reply plays on: the same reply (the echo guard keeps the coupling it learned, the
        # talk-over detector the residual's bar), though the held frames went by as not playing.
        # Its speaker stream was aborted and started again at the hold, so the echo's delay may
        # differ: the canceller must show once more that it removes the echo (talkover.py).
        self._was_playing = reply_plays_on
        if reply_plays_on and self.talk_over is not None:
            self.talk_over.resumed()

    def cancel(self) -> Actions:
        """Drop the turn in progress (long hold: new conversation)."""
        self.talking = False
        self.segmenter.reset()
        if self.gate is not None:
            self.gate.sleep()
        return Actions(clear=True)

    def stopped(self) -> None:
        """The stop word stopped the reply: what was heard of it is dropped, and with a wake word
        the device waits for the word again (no follow-up turn after a "stop")."""
        self.segmenter.reset()
        if self.gate is not None:
            self.gate.sleep()

    def wake_by_button(self, now: float) -> None:
        """A press in a VAD mode with a wake word: listen as if the word had been said."""
        if self.gate is not None:
            self.gate.wake(now)
