"""The simulator's server VAD: a deterministic energy detector on 10 ms frames.

Time is the audio itself: every position is in milliseconds of audio appended this session,
the way the real server reports ``audio_start_ms`` / ``audio_end_ms`` (reference section 2.2).
Threshold 0..1 maps linearly onto -70..-20 dBFS (0.5 = -45 dBFS); two loud frames in a row
start speech, so one click does not.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FRAME_MS = 10
SAMPLES_PER_MS = 24


@dataclass(frozen=True)
class VadStart:
    audio_start_ms: int  # includes the prefix padding


@dataclass(frozen=True)
class VadStop:
    audio_end_ms: int


class EnergyVad:
    def __init__(self, *, threshold: float = 0.5, prefix_padding_ms: int = 300,
                 silence_duration_ms: int = 200, min_speech_frames: int = 2) -> None:
        self.threshold_dbfs = -70.0 + 50.0 * threshold
        self.prefix_padding_ms = prefix_padding_ms
        self.silence_duration_ms = silence_duration_ms
        self.min_speech_frames = min_speech_frames
        self.position_ms = 0
        self.reset()
        self._pending = np.zeros(0, dtype=np.int16)

    def reset(self) -> None:
        """Out of speech, as if nothing had been heard (the audio position goes on)."""
        self.in_speech = False
        self._loud_run = 0
        self._quiet_ms = 0

    def feed(self, pcm: bytes) -> list[VadStart | VadStop]:
        """Feed 24 kHz PCM16; return the starts and stops it completes, in order."""
        samples = np.concatenate([self._pending, np.frombuffer(pcm, dtype="<i2")])
        frame = FRAME_MS * SAMPLES_PER_MS
        whole = len(samples) - len(samples) % frame
        self._pending = samples[whole:].copy()
        out: list[VadStart | VadStop] = []
        if not whole:
            return out
        frames = samples[:whole].astype(np.float32).reshape(-1, frame) / 32768.0
        rms = np.sqrt(np.mean(frames * frames, axis=1))
        levels = 20.0 * np.log10(np.maximum(rms, 1e-9))
        for level in levels:
            self.position_ms += FRAME_MS
            loud = level >= self.threshold_dbfs
            if not self.in_speech:
                self._loud_run = self._loud_run + 1 if loud else 0
                if self._loud_run >= self.min_speech_frames:
                    self.in_speech = True
                    self._quiet_ms = 0
                    onset = self.position_ms - self._loud_run * FRAME_MS
                    out.append(VadStart(max(0, onset - self.prefix_padding_ms)))
            else:
                self._quiet_ms = 0 if loud else self._quiet_ms + FRAME_MS
                if self._quiet_ms >= self.silence_duration_ms:
                    self.in_speech = False
                    self._loud_run = 0
                    out.append(VadStop(self.position_ms))
        return out
