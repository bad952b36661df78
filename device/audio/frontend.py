"""Microphone front end: native-rate device audio -> one resampler -> aligned 20 ms frames at
16 kHz (what webrtcvad, the wake word and the echo canceller take), cleaned of the device's own
voice when an echo canceller is given.

Only what is sent goes on to 24 kHz (the API's rate): :class:`Uplink` converts the frames a
turn sends, so a silent room costs one resampler, not two (README "Audio": where the CPU goes).

The canceller runs on 10 ms frames and only while the speaker has played something in the last
``aec_hold_s`` (the echo tail included): with nothing playing there is no echo to remove, and
AEC3 is the largest DSP cost of the front end.
"""

from __future__ import annotations

import numpy as np

from .aec import EchoCanceller
from .decimate import Decimator
from .resample import StreamResampler, to_mono

API_RATE = 24000
VAD_RATE = 16000
AEC_FRAME = VAD_RATE // 100      # 10 ms


class FrontEnd:
    def __init__(self, device_rate: int, channels: int, *, frame_ms: int = 20,
                 canceller: EchoCanceller | None = None, aec_hold_s: float = 0.5) -> None:
        if frame_ms not in (10, 20, 30):
            raise ValueError("webrtcvad frames are 10, 20 or 30 ms")
        self.channels = channels
        self.frame_ms = frame_ms
        self.canceller = canceller
        self.aec_hold_s = aec_hold_s
        # 48, 32, 96 kHz: a causal filter, no look-ahead (decimate.py: soxr's blocks held back
        # part of each period); other rates: soxr
        self._to_vad: Decimator | StreamResampler = (Decimator(device_rate // VAD_RATE)
                                                     if device_rate % VAD_RATE == 0
                                                     else StreamResampler(device_rate, VAD_RATE))
        self._vad = np.zeros(0, np.int16)
        self._raw = np.zeros(0, np.int16)     # < 10 ms waiting for the canceller
        self._before = np.zeros(0, np.int16)  # what the canceller was given, frame-aligned with _vad
        #: per frame of the last :meth:`frames` call: its level (dBFS) before the canceller
        #: (empty when the canceller did not run)
        self.raw_db: list[float] = []
        self._n_vad = VAD_RATE * frame_ms // 1000
        self._to_api: StreamResampler | None = None    # only for the compatibility pairs
        self.cancelled_frames = 0     # 10 ms frames the canceller cleaned
        self.bypassed_frames = 0      # 10 ms frames it was skipped (nothing played lately)
        self.echo_in = 0.0            # energy in and out of the canceller (mic-test shows the ratio)
        self.echo_out = 0.0

    def frames(self, pcm: bytes, *, at: float = 0.0, last_reference: float = float("-inf"),
               restarted: bool = False) -> list[bytes]:
        """Device bytes captured up to monotonic time ``at`` in; 16 kHz 20 ms frames out.

        ``last_reference``: when the speaker was last handed audio (monotonic); the canceller
        runs while that is less than ``aec_hold_s`` ago. ``restarted``: the stream had a gap
        before ``pcm`` (reopened, overflowed)."""
        mono = self._to_vad.process(to_mono(pcm, self.channels))
        canceller = self.canceller
        if restarted and canceller is not None:
            canceller.mic_restarted()
        ran = canceller is not None and at - last_reference <= self.aec_hold_s
        if canceller is not None and ran:
            # Whole 10 ms frames only; the rest waits for the next period (the canceller must
            # see the microphone as one unbroken stream).
            raw = np.concatenate([self._raw, mono]) if len(self._raw) else mono
            whole = len(raw) // AEC_FRAME * AEC_FRAME
            self._raw = raw[whole:]
            before = raw[:whole]
            mono = self._cancel(canceller, before, at - len(self._raw) / VAD_RATE)
        else:
            if canceller is not None:
                self.bypassed_frames += len(mono) // AEC_FRAME
            if len(self._raw):
                mono, self._raw = np.concatenate([self._raw, mono]), self._raw[:0]
            before = mono
        self._vad = np.concatenate([self._vad, mono]) if len(self._vad) else mono
        count = len(self._vad) // self._n_vad
        n = self._n_vad
        out = [self._vad[i * n:(i + 1) * n].tobytes() for i in range(count)]
        self._vad = self._vad[count * n:]
        if canceller is not None:
            # The same frames before the canceller, kept aligned; how loud they were only when
            # it ran (talk-over detection: while the device speaks), not in a silent room.
            self._before = np.concatenate([self._before, before]) if len(self._before) else before
            self.raw_db = []
            if ran:
                x = self._before[:count * n].astype(np.float32).reshape(count, n) / 32768.0
                self.raw_db = list(10.0 * np.log10(np.maximum(np.einsum("ij,ij->i", x, x) / n, 1e-18)))
            self._before = self._before[count * n:]
        return out

    def _cancel(self, canceller: EchoCanceller, mono: np.ndarray, at: float) -> np.ndarray:
        """Whole 10 ms frames, the last of which ended at ``at``."""
        out = np.empty_like(mono)
        frames = len(mono) // AEC_FRAME
        for i in range(frames):
            s = slice(i * AEC_FRAME, (i + 1) * AEC_FRAME)
            out[s] = canceller.process(np.ascontiguousarray(mono[s]), at - (frames - 1 - i) * 0.01)
        self.cancelled_frames += frames
        x_in, x_out = mono.astype(np.float64), out.astype(np.float64)
        self.echo_in += float(np.dot(x_in, x_in))
        self.echo_out += float(np.dot(x_out, x_out))
        return out

    def feed(self, pcm: bytes) -> list[tuple[bytes, bytes]]:
        """(24 kHz frame, 16 kHz frame) pairs for the same 20 ms (tools and tests: the 24 kHz
        side is converted from the 16 kHz frames, as the uplink does)."""
        if self._to_api is None:
            self._to_api = StreamResampler(VAD_RATE, API_RATE)
            self._api = np.zeros(0, np.int16)
            self._pending16: list[bytes] = []
        new = self.frames(pcm)
        if new:
            self._pending16 += new
            self._api = np.concatenate([self._api, self._to_api.process(np.frombuffer(b"".join(new), np.int16))])
        n = API_RATE * self.frame_ms // 1000
        count = min(len(self._api) // n, len(self._pending16))
        out = [(self._api[i * n:(i + 1) * n].tobytes(), self._pending16[i]) for i in range(count)]
        self._api = self._api[count * n:]
        self._pending16 = self._pending16[count:]
        return out


class StreamClock:
    """When the microphone's samples were captured, from the stream itself: the earliest time
    consistent with every delivery (a late event loop only ever makes a delivery later), let
    to drift by ``drift_ppm`` for the sound card's own clock. Without it the canceller's
    timeline jumps whenever the loop is late, and it must find the echo again each time."""

    def __init__(self, rate: int, *, drift_ppm: float = 500.0) -> None:
        self.rate = rate
        self.drift = drift_ppm * 1e-6
        self._offset: float | None = None
        self._count = 0
        self._last = 0.0

    def stamp(self, now: float, samples: int, *, reset: bool = False) -> float:
        """Monotonic time at which the last of ``samples`` (just delivered at ``now``) was captured."""
        self._count += samples
        seen = now - self._count / self.rate
        if self._offset is None or reset:
            self._offset = seen
        else:
            self._offset = min(self._offset + self.drift * (now - self._last), seen)
        self._last = now
        return self._offset + self._count / self.rate


class Uplink:
    """16 kHz frames a turn sends -> 24 kHz PCM for the API; continuous within a turn."""

    def __init__(self) -> None:
        self._up = StreamResampler(VAD_RATE, API_RATE)

    def convert(self, frames: list[bytes], *, new_turn: bool, end: bool) -> bytes:
        if new_turn:
            self._up.reset()
        samples = np.frombuffer(b"".join(frames), np.int16)
        out = self._up.process(samples, last=end)
        if end:
            self._up.reset()
        return out.tobytes()

