"""The local voice gate: a pure speech segmenter over webrtcvad decisions.

Time is an input: the segmenter counts frames of a fixed length and never reads a clock, so
tests are exact. Per frame it is told whether webrtcvad heard speech and is handed the 24 kHz
audio of that frame; it answers which audio to send and whether speech started or ended.

* **Pre-roll**: a ring buffer (default 300 ms) of the audio before speech was confirmed is sent
  ahead of it, so the first syllable is not lost.
* **Start**: ``min_speech_ms`` of consecutive speech frames (one noisy frame is not a turn).
* **Hangover**: speech ends after ``hangover_ms`` without speech frames; the hangover audio is
  sent, which is how a server-side VAD still gets the silence it needs to end the turn.
* **Echo guard** (``strict`` frames, while the device itself is speaking): the caller passes
  the level of what the speaker is playing (the reference we own). During the first
  ``echo_learn_ms`` of a reply the segmenter learns how loud our own voice comes back at the
  microphone (the coupling, in dB); after that a frame counts as speech only if webrtcvad says
  so *and* it is ``echo_margin_db`` louder than the expected echo, for ``barge_in_min_ms``.
  Trade-off: a person who talks in the first ``echo_learn_ms`` of a reply is heard only after
  it; a very loud speaker at high volume needs a larger margin or ``half_duplex``.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

#: While learning the echo, only playback within this many dB of the loudest so far counts.
LEARN_SPAN_DB = 12.0


@dataclass(frozen=True)
class VadSettings:
    aggressiveness: int = 2           # webrtcvad 0..3
    frame_ms: int = 20                # 20 or 30: 10 ms frames give many false positives on noise
    preroll_ms: int = 300
    min_speech_ms: int = 100
    hangover_ms: int = 700
    barge_in_min_ms: int = 240
    echo_margin_db: float = 10.0
    echo_learn_ms: int = 400

    def __post_init__(self) -> None:
        if self.frame_ms not in (20, 30):
            raise ValueError("[vad] frame_ms must be 20 or 30")
        if not 0 <= self.aggressiveness <= 3:
            raise ValueError("[vad] aggressiveness must be 0, 1, 2 or 3")


@dataclass(frozen=True)
class GateResult:
    send: tuple[bytes, ...] = ()
    started: bool = False
    ended: bool = False


def level_db(pcm: bytes | bytearray | memoryview) -> float:
    """RMS level of PCM16 in dBFS (-180 for digital silence or nothing). Called for every
    frame on the loop and every period on the speaker's thread: one dot product, not numpy's
    mean (a quarter of the time on 20 ms frames)."""
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float32)
    if not len(samples):
        return -180.0
    rms = math.sqrt(float(np.dot(samples, samples)) / len(samples)) / 32768.0
    return 20.0 * math.log10(max(rms, 1e-9))


class SpeechSegmenter:
    def __init__(self, settings: VadSettings | None = None, *, preroll_ms: int | None = None) -> None:
        self.settings = s = settings or VadSettings()
        ring = max(1, (preroll_ms if preroll_ms is not None else s.preroll_ms) // s.frame_ms)
        self._ring: deque[bytes] = deque(maxlen=ring)
        self.in_speech = False
        self._run_ms = 0
        self._quiet_ms = 0
        self.position_ms = 0
        self.coupling_db: float | None = None
        self._strict_ms = 0
        self._learned: list[tuple[float, float]] = []   # (playback dB, mic minus playback dB)

    def reset(self) -> None:
        self._ring.clear()
        self.in_speech = False
        self._run_ms = self._quiet_ms = 0

    def keep_last(self, ms: int) -> None:
        """Forget all but the last ``ms`` of the pre-roll and any speech run (the wake word)."""
        keep = max(0, ms // self.settings.frame_ms)
        frames = list(self._ring)[-keep:] if keep else []
        self.reset()
        self._ring.extend(frames)

    def playback_started(self) -> None:
        """A new reply starts playing: learn the echo coupling afresh."""
        self.coupling_db = None
        self._strict_ms = 0
        self._learned = []

    def preroll(self) -> list[bytes]:
        """The audio held before now (for push-to-talk, which starts from the press)."""
        return list(self._ring)

    def frame(self, pcm24: bytes, is_speech: bool, *, strict: bool = False,
              reference_db: float = -90.0, start_ms: int | None = None) -> GateResult:
        """``start_ms`` overrides the speech needed to start (a barge-in over clean audio)."""
        s = self.settings
        self.position_ms += s.frame_ms
        if strict:
            is_speech = self._beats_echo(pcm24, is_speech, reference_db)
        if not self.in_speech:
            self._ring.append(pcm24)
            if is_speech:
                self._run_ms += s.frame_ms
            else:  # strict (over our own echo): gaps between words only leak, they do not reset
                self._run_ms = max(0, self._run_ms - s.frame_ms) if strict else 0
            needed = s.barge_in_min_ms if strict else start_ms if start_ms is not None else s.min_speech_ms
            if self._run_ms < needed:
                return GateResult()
            self.in_speech = True
            self._quiet_ms = 0
            held = tuple(self._ring)
            self._ring.clear()
            return GateResult(send=held, started=True)
        self._quiet_ms = 0 if is_speech else self._quiet_ms + s.frame_ms
        if self._quiet_ms >= s.hangover_ms:
            self.in_speech = False
            self._run_ms = 0
            return GateResult(send=(pcm24,), ended=True)
        return GateResult(send=(pcm24,))

    def _beats_echo(self, pcm24: bytes, is_speech: bool, reference_db: float) -> bool:
        level = level_db(pcm24)
        self._strict_ms += self.settings.frame_ms
        if self._strict_ms <= self.settings.echo_learn_ms:
            if reference_db > -60:  # only audible playback tells us the coupling
                self._learned.append((reference_db, level - reference_db))
                # Frames well below the loudest playback so far (a reply fading in) say more about
                # the room's noise than about our echo: a person over such a reply would then be
                # ignored (found by the soak). Learn from the loud ones.
                loudest = max(ref for ref, _ in self._learned)
                self.coupling_db = max(seen for ref, seen in self._learned if ref >= loudest - LEARN_SPAN_DB)
            return False
        expected = reference_db + (self.coupling_db if self.coupling_db is not None else 0.0)
        return is_speech and level >= expected + self.settings.echo_margin_db


class WebRtcVad:
    """webrtcvad on 16 kHz PCM16 frames (webrtcvad-wheels: the maintained fork with wheels)."""

    def __init__(self, aggressiveness: int = 2) -> None:
        import webrtcvad

        self._vad = webrtcvad.Vad(aggressiveness)

    def is_speech(self, pcm16k: bytes) -> bool:
        return bool(self._vad.is_speech(pcm16k, 16000))
