"""Acoustic echo cancellation: the microphone cleaned with what the device itself played.

The device owns the far end: every sample it hands to the speaker is given to
:meth:`EchoCanceller.reference` with the time it was handed over. The canceller keeps those
samples on a timeline (:class:`ReferenceTimeline`, sans-I/O: time is an input) and, for each
10 ms microphone frame, feeds the canceller the reference of the same moment. The echo reaches
the microphone later than that (output latency + air + input latency); that lag is what the
canceller estimates:

* ``webrtc``: WebRTC's AEC3 from livekit's library (the ``aec`` extra), called directly
  (apmffi.py). AEC3 searches the delay itself; a starting hint (``stream_delay_ms``) can be
  given once (the daemon gives none).
* ``speex``: libspeexdsp's MDF canceller + residual echo suppressor, bound with ctypes to the
  Debian/Pi OS library ``libspeexdsp1`` (already pulled in by PulseAudio). It has no delay search:
  the reference is pushed back by our own cross-correlation estimate (:func:`estimate_delay`)
  and the filter covers ``tail_ms`` beyond it.

``bench/aec_bench.py`` compares both on the same recordings; the figures and the choice are in
README.md ("Echo cancellation").
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from . import lkffi
from .apmffi import open_apm

logger = logging.getLogger(__name__)

FRAME_MS = 10
RATES = (16000, 24000, 32000, 48000)


class EchoCanceller(Protocol):
    """Mic frames in, cleaned mic frames out; the speaker's samples as the reference."""

    rate: int
    #: why it stopped working mid-run (it then passes the microphone on), or None
    failed: str | None

    def process(self, mic_frame: np.ndarray, at: float | None = None) -> np.ndarray:
        """One 10 ms int16 frame at ``rate`` captured at ``at`` (monotonic s; now if None)."""
        ...

    def reference(self, played: np.ndarray, at: float) -> None:
        """int16 samples at ``rate`` handed to the speaker at monotonic time ``at``."""
        ...

    def mic_restarted(self) -> None:
        """The microphone's stream has a gap (reopened, overflowed): place the next frame by its time."""
        ...


class AecUnavailable(RuntimeError):
    """The chosen canceller's library is missing; the message names the fix."""


class ReferenceTimeline:
    """Played samples placed on the monotonic clock; read back frame by frame.

    The microphone is a continuous stream: its position is anchored to the clock at the first
    frame and then advances by one frame per call, so a burst of frames delivered together (a
    large capture period) still reads consecutive reference frames. If the two clocks drift
    apart by more than ``resync_ms`` (an overflow, a stalled loop) the anchor is taken again.
    Samples never handed to the speaker read as silence. ``write`` may come from the speaker's
    writer thread while ``read`` runs on the event loop: one lock guards both.
    """

    def __init__(self, rate: int, *, span_s: float = 4.0, resync_ms: int = 120) -> None:
        self.rate = rate
        self._ring = np.zeros(int(span_s * rate), np.int16)
        self._t0: float | None = None
        self._written_to = 0           # absolute sample index just past the newest write
        self._mic_pos: int | None = None
        self._resync = resync_ms * rate // 1000
        self.resyncs = 0
        self._follow = 0
        self._lock = threading.Lock()

    def _index(self, at: float) -> int:
        if self._t0 is None:
            self._t0 = at
        return round((at - self._t0) * self.rate)

    def write(self, samples: np.ndarray, at: float) -> None:
        with self._lock:
            self._write(samples, at)

    def _write(self, samples: np.ndarray, at: float) -> None:
        start = self._index(at)
        # Consecutive writes a little early or late are the same stream (resamplers release
        # samples in bursts): continue it, or the canceller sees the delay jump at every gap.
        if abs(self._written_to - start) < self._resync:
            start = self._written_to
        elif start > self._written_to:
            # A new stretch after a pause: what the ring holds in between is old, not silence.
            self._put(self._written_to, np.zeros(min(start - self._written_to, len(self._ring)), np.int16))
        self._put(start, samples)
        self._written_to = start + len(samples)

    def _put(self, start: int, samples: np.ndarray) -> None:
        ring = len(self._ring)
        samples = samples[-ring:]
        i = start % ring
        first = min(len(samples), ring - i)        # up to the ring's end, the rest from its start
        self._ring[i:i + first] = samples[:first]
        self._ring[:len(samples) - first] = samples[first:]

    def mic_restarted(self, follow_frames: int = 50) -> None:
        """The stream had a gap: place the next ``follow_frames`` reads by their time, not after
        the last one. The capture clock (pipeline's StreamClock) settles over its first few
        deliveries after a restart; following it there keeps the canceller's delay right."""
        with self._lock:
            self._mic_pos = None
            self._follow = follow_frames

    def read(self, n: int, at: float) -> np.ndarray:
        """The reference for the ``n`` mic samples that ended at time ``at``."""
        with self._lock:
            return self._read(n, at)

    def _read(self, n: int, at: float) -> np.ndarray:
        expected = self._index(at) - n
        if self._follow:
            self._follow -= 1
            self._mic_pos = expected
        elif self._mic_pos is None or abs(self._mic_pos - expected) > self._resync:
            if self._mic_pos is not None:
                self.resyncs += 1
            self._mic_pos = expected
        start = self._mic_pos
        self._mic_pos += n
        ring = len(self._ring)
        i = start % ring
        first = min(n, ring - i)
        out = np.concatenate((self._ring[i:i + first], self._ring[:n - first]))
        # Clear what was read so a wrapped ring never replays old speech as a reference.
        self._ring[i:i + first] = 0
        self._ring[:n - first] = 0
        if start + n > self._written_to:
            out[max(0, self._written_to - start):] = 0
        return out


def _check_frame(frame: np.ndarray, n: int) -> None:
    if frame.dtype != np.int16 or frame.ndim != 1 or len(frame) != n:
        raise ValueError(f"echo canceller frames are {n} int16 samples (10 ms), got {len(frame)} {frame.dtype}")


class _TimelineCanceller:
    """What both cancellers share: the frame size, and the reference on its timeline (what the
    speaker played, read back for each microphone frame)."""

    def __init__(self, rate: int, clock: Callable[[], float]) -> None:
        if rate not in RATES:
            raise ValueError(f"echo canceller rate must be one of {RATES}, not {rate}")
        self.rate = rate
        self.n = rate * FRAME_MS // 1000
        self.clock = clock
        self.timeline = ReferenceTimeline(rate)
        self.failed: str | None = None

    def reference(self, played: np.ndarray, at: float) -> None:
        self.timeline.write(played, at)

    def mic_restarted(self) -> None:
        self.timeline.mic_restarted()

    def _reference_for(self, mic_frame: np.ndarray, at: float | None) -> np.ndarray:
        """The reference of the same moment as ``mic_frame`` (checked: 10 ms of int16)."""
        _check_frame(mic_frame, self.n)
        return self.timeline.read(self.n, self.clock() if at is None else at)


class WebRtcAec(_TimelineCanceller):
    """AEC3 (+ high-pass, optional noise suppression) through livekit's audio processing module
    (called directly: apmffi.py)."""

    name = "webrtc"

    def __init__(self, rate: int = 16000, *, stream_delay_ms: int | None = None,
                 noise_suppression: bool = False, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(rate, clock)
        try:
            self._apm = open_apm(rate, noise_suppression=noise_suppression, stream_delay_ms=stream_delay_ms)
        except lkffi.NotInstalled as exc:
            raise AecUnavailable("echo_cancel = \"webrtc\" needs livekit: pip install 'pivoice[aec]' "
                                 "(or set [audio] echo_cancel = \"off\")") from exc
        except (ImportError, RuntimeError, AssertionError, OSError) as exc:   # installed, its library won't start
            raise self._broken(exc) from exc

    @staticmethod
    def _broken(exc: Exception) -> AecUnavailable:
        return AecUnavailable(f"echo_cancel = \"webrtc\": livekit's audio processing did not start "
                              f"({type(exc).__name__}: {str(exc).splitlines()[0]}): "
                              "pip install --force-reinstall 'pivoice[aec]' (or set [audio] echo_cancel = \"off\")")

    def process(self, mic_frame: np.ndarray, at: float | None = None) -> np.ndarray:
        reference = self._reference_for(mic_frame, at)
        if self.failed is None:
            try:
                self._apm.reverse(reference)
                return self._apm.capture(mic_frame)
            except RuntimeError as exc:   # livekit refused the request: its module is gone or broken
                self.failed = str(exc)
                logger.error("the echo canceller failed (%s): pivoice goes on without it, as with [audio] "
                             "echo_cancel = \"off\" (the echo guard decides while it speaks, and its own voice "
                             "can say a [wake] stop word); `pivoice doctor` checks it again, and a restart "
                             "starts a new one", exc)
        return mic_frame.copy()


def estimate_delay(reference: np.ndarray, mic: np.ndarray, rate: int, max_ms: int = 400) -> tuple[int, float]:
    """(delay in samples, normalised peak) of ``reference`` inside ``mic`` by GCC-PHAT.

    Whitening (PHAT) keeps the peak sharp on speech, whose spectrum is dominated by a few
    formants; the peak height (0..1) says how much to trust it.
    """
    n = len(reference) + len(mic)
    size = 1 << (n - 1).bit_length()
    r = np.fft.rfft(reference.astype(np.float32), size)
    m = np.fft.rfft(mic.astype(np.float32), size)
    cross = m * np.conj(r)
    cross /= np.abs(cross) + 1e-9
    corr = np.fft.irfft(cross, size)
    lags = corr[: max_ms * rate // 1000]
    lag = int(np.argmax(lags))
    return lag, float(lags[lag])


class _Speex:
    """The few libspeexdsp entry points we use (ctypes; the library is in every Debian/Pi OS)."""

    ECHO_SET_SAMPLING_RATE = 24
    PREPROCESS_SET_ECHO_STATE = 24
    PREPROCESS_SET_DENOISE = 0

    def __init__(self) -> None:
        path = ctypes.util.find_library("speexdsp") or "libspeexdsp.so.1"
        try:
            lib = ctypes.CDLL(path)
        except OSError as exc:
            raise AecUnavailable("echo_cancel = \"speex\" needs libspeexdsp: apt-get install libspeexdsp1") from exc
        lib.speex_echo_state_init.restype = ctypes.c_void_p
        lib.speex_echo_state_init.argtypes = [ctypes.c_int, ctypes.c_int]
        lib.speex_echo_ctl.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p]
        lib.speex_echo_cancellation.argtypes = [ctypes.c_void_p] + [ctypes.c_void_p] * 3
        lib.speex_echo_state_destroy.argtypes = [ctypes.c_void_p]
        lib.speex_preprocess_state_init.restype = ctypes.c_void_p
        lib.speex_preprocess_state_init.argtypes = [ctypes.c_int, ctypes.c_int]
        lib.speex_preprocess_ctl.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p]
        lib.speex_preprocess_run.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
        lib.speex_preprocess_state_destroy.argtypes = [ctypes.c_void_p]
        self.lib = lib


class SpeexAec(_TimelineCanceller):
    """libspeexdsp MDF echo canceller + residual echo suppression, reference delay estimated."""

    name = "speex"

    def __init__(self, rate: int = 16000, *, tail_ms: int = 200, delay_ms: int | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(rate, clock)
        self._lib = _Speex().lib
        self._echo = self._lib.speex_echo_state_init(self.n, tail_ms * rate // 1000)
        value = ctypes.c_int(rate)
        self._lib.speex_echo_ctl(self._echo, _Speex.ECHO_SET_SAMPLING_RATE, ctypes.byref(value))
        self._pre = self._lib.speex_preprocess_state_init(self.n, rate)
        off = ctypes.c_int(0)
        self._lib.speex_preprocess_ctl(self._pre, _Speex.PREPROCESS_SET_DENOISE, ctypes.byref(off))
        self._lib.speex_preprocess_ctl(self._pre, _Speex.PREPROCESS_SET_ECHO_STATE, ctypes.c_void_p(self._echo))
        self._fixed_delay = delay_ms is not None
        self.delay = (delay_ms or 0) * rate // 1000
        self._refs: list[np.ndarray] = []     # recent reference frames, newest last
        self._mics: list[np.ndarray] = []
        self._keep = 500 // FRAME_MS          # 500 ms of history for the delay search
        self._count = 0

    def process(self, mic_frame: np.ndarray, at: float | None = None) -> np.ndarray:
        self._refs.append(self._reference_for(mic_frame, at))
        self._mics.append(mic_frame)
        del self._refs[: -self._keep - 1], self._mics[: -self._keep - 1]
        self._count += 1
        if not self._fixed_delay and len(self._refs) > self._keep and self._count % 25 == 0:
            self._update_delay()
        frames_back = self.delay // self.n
        ref = self._refs[-1 - frames_back] if frames_back < len(self._refs) else np.zeros(self.n, np.int16)
        out = np.zeros(self.n, np.int16)
        mic = np.ascontiguousarray(mic_frame)
        self._lib.speex_echo_cancellation(self._echo, mic.ctypes.data, ref.ctypes.data, out.ctypes.data)
        self._lib.speex_preprocess_run(self._pre, out.ctypes.data)
        return out

    def _update_delay(self) -> None:
        ref = np.concatenate(self._refs)
        if np.abs(ref).max() < 300:
            return  # nothing played: nothing to align
        lag, peak = estimate_delay(ref, np.concatenate(self._mics), self.rate)
        if peak > 0.1:
            self.delay = lag

    def close(self) -> None:
        if getattr(self, "_echo", None):  # None too when __init__ refused its arguments
            self._lib.speex_echo_state_destroy(self._echo)
            self._lib.speex_preprocess_state_destroy(self._pre)
            self._echo = self._pre = None

    def __del__(self) -> None:
        self.close()


def create(kind: str, rate: int = 16000, **options: Any) -> EchoCanceller | None:
    """``"webrtc"``, ``"speex"`` or ``"off"`` (None: the caller keeps its echo guard)."""
    if kind == "off":
        return None
    if kind == "webrtc":
        return WebRtcAec(rate, **options)
    if kind == "speex":
        return SpeexAec(rate, **options)
    raise ValueError(f"[audio] echo_cancel must be \"webrtc\", \"speex\" or \"off\", not {kind!r}")


def available(kind: str = "webrtc") -> bool:
    try:
        create(kind)
    except AecUnavailable:
        return False
    return True
