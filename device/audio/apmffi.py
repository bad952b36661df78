"""WebRTC's audio processing module (AEC3), called straight into livekit's native library.

``livekit.rtc.AudioProcessingModule`` wraps every 10 ms frame in an ``AudioFrame``, copies it,
builds and serialises a protobuf request, parses the reply and drops its handle, for each of
the two calls a frame takes (the reply, the microphone): about 45 us of Python per call on this
machine, ~0.9 % of a core while the device speaks (a Pi Zero 2 W: ~9 % of its own), beside
~130 us per frame in livekit's library (AEC3 and its request handling). The requests one module
sends differ only in the samples, so :class:`DirectApm` writes each request once, over a fixed
buffer the frames are copied into, and reads a reply only when it is not the plain success
reply. Its output is bit-identical to the wrapper's (tests/audio/test_apmffi.py).

Which way :func:`open_apm` goes, by livekit's installed version:

* a version in ``lkffi.TESTED``: the library is loaded and started by lkffi.py and livekit's
  Python package is never imported (protobuf and its generated modules: 4 MB of resident
  memory in the daemon);
* another 1.x: livekit's Python package starts its library, and the direct calls are used when
  :func:`probe` finds that they answer as its Python API does on a few frames of noise;
* otherwise, or when the probe finds a difference: the Python API (:class:`WrappedApm`), and
  the log says why. A panic livekit's library catches is logged and the request fails; one in
  AEC3's processing aborts the process (lkffi.py).

Not thread-safe: one thread calls ``reverse`` and ``capture`` (the canceller's ``process``).
"""

from __future__ import annotations

import ctypes
import logging
from typing import Any, Protocol

import numpy as np

from . import lkffi
from .lkffi import field, message

logger = logging.getLogger(__name__)

#: livekit's major version whose requests the direct calls write (any minor: see probe)
TESTED_MAJOR = 1
# FfiRequest's fields for the module's requests, and FfiResponse's for their replies (ffi.proto)
NEW_APM, PROCESS, REVERSE, SET_DELAY = 50, 51, 52, 53
REPLY = {NEW_APM: 49, PROCESS: 50, REVERSE: 51, SET_DELAY: 52}
NAMES = {NEW_APM: "new_apm", PROCESS: "apm_process_stream", REVERSE: "apm_process_reverse_stream",
         SET_DELAY: "apm_set_stream_delay"}
#: NewApmRequest's fields, by livekit's Python API's option names
OPTIONS = {"echo_cancellation": 1, "auto_gain_control": 2, "high_pass_filter": 3, "noise_suppression": 4}


class Apm(Protocol):
    """One 10 ms mono int16 frame at a time, at the rate the module was opened with."""

    kind: str   # "direct" or "wrapper" (pivoice doctor says which)

    def reverse(self, frame: np.ndarray) -> None:
        """What the speaker played (the far end, the echo's source)."""
        ...

    def capture(self, frame: np.ndarray) -> np.ndarray:
        """The microphone's frame, returned cleaned (a new array)."""
        ...


class WrappedApm:
    """Through livekit's public Python API (the fallback)."""

    kind = "wrapper"

    def __init__(self, rtc: Any, module: Any, rate: int) -> None:
        self._rtc, self._module = rtc, module
        self.rate, self.n = rate, rate // 100

    def reverse(self, frame: np.ndarray) -> None:
        self._module.process_reverse_stream(self._rtc.AudioFrame(frame.tobytes(), self.rate, 1, self.n))

    def capture(self, frame: np.ndarray) -> np.ndarray:
        audio = self._rtc.AudioFrame(frame.tobytes(), self.rate, 1, self.n)
        self._module.process_stream(audio)
        return np.frombuffer(audio.data, np.int16).copy()


def _error(reply: bytes, request: int) -> str | None:
    """The error text of a module's reply (its field 1), or None."""
    body = field(reply, REPLY[request])
    text = field(body, 1) if isinstance(body, bytes) else None
    return text.decode("utf-8", "replace") if isinstance(text, bytes) and text else None


def new_module(lib: lkffi.Library, options: dict[str, bool], stream_delay_ms: int | None = None) -> int:
    """A new native module's handle. ``stream_delay_ms`` is given once: AEC3 keeps it as its
    starting point (the output is the same, sample for sample, as giving it before every frame)."""
    if stream_delay_ms is not None and stream_delay_ms < 0:
        raise ValueError(f"stream_delay_ms must be 0 or more, not {stream_delay_ms}")
    settings = sorted((OPTIONS[name], bool(on)) for name, on in options.items())
    reply = lib.request(message((NEW_APM, message(*settings))), "echo canceller's new_apm")
    number: int | bytes | None = field(reply, REPLY[NEW_APM])
    for _ in range(3):       # NewApmResponse { apm: OwnedApm { handle: FfiOwnedHandle { id } } }
        number = field(number, 1) if isinstance(number, bytes) else None
    if not isinstance(number, int) or number == 0:
        raise RuntimeError(f"livekit's reply to new_apm holds no module ({reply[:32].hex()})")
    if stream_delay_ms is not None:
        try:
            request = message((SET_DELAY, message((1, number), (2, int(stream_delay_ms)))))
            error = _error(lib.request(request, "echo canceller's apm_set_stream_delay"), SET_DELAY)
            if error:
                raise RuntimeError(f"echo canceller (apm_set_stream_delay): {error}")
        except BaseException:
            lib.drop_handle(number)      # the module is not handed out: free it here
            raise
    return number


class _Call:
    """One request, written once: it points at ``buffer``, whose samples change per frame."""

    def __init__(self, request: int, handle: int, buffer: np.ndarray, rate: int) -> None:
        self.kind = NAMES[request]
        self.what = f"echo canceller's {self.kind}"
        self.request = request
        body = message((1, handle), (2, buffer.ctypes.data), (3, buffer.nbytes), (4, rate), (5, 1))
        self.data = message((request, body))           # kept: the pointer below points into it
        self.pointer = ctypes.cast(ctypes.c_char_p(self.data), ctypes.POINTER(ctypes.c_ubyte))
        self.ok = message((REPLY[request], b""))       # the plain success reply


class DirectApm:
    """A native module of its own, and its two requests written once, straight into livekit's library."""

    kind = "direct"

    def __init__(self, lib: lkffi.Library, rate: int, options: dict[str, bool],
                 stream_delay_ms: int | None = None) -> None:
        self._lib = lib
        self.handle = new_module(lib, options, stream_delay_ms)
        self._reply = lkffi.Reply()
        n = rate // 100
        self._reverse_buf = np.zeros(n, np.int16)
        self._capture_buf = np.zeros(n, np.int16)
        self._reverse = _Call(REVERSE, self.handle, self._reverse_buf, rate)
        self._capture = _Call(PROCESS, self.handle, self._capture_buf, rate)

    def _call(self, call: _Call) -> None:
        reply = self._lib.send(call.pointer, len(call.data), call.what, self._reply)
        if reply != call.ok:
            error = _error(reply, call.request)
            if error:
                raise RuntimeError(f"echo canceller ({call.kind}): {error}")

    def reverse(self, frame: np.ndarray) -> None:
        self._reverse_buf[:] = frame
        self._call(self._reverse)

    def capture(self, frame: np.ndarray) -> np.ndarray:
        self._capture_buf[:] = frame
        self._call(self._capture)
        return self._capture_buf.copy()

    def close(self) -> None:
        """Free the native module (AEC3's state); later calls are refused."""
        if self.handle:
            self._lib.drop_handle(self.handle)
            self.handle = 0

    def __del__(self) -> None:
        if getattr(self, "handle", 0):
            self.close()


def _options(noise_suppression: bool) -> dict[str, bool]:
    return {"echo_cancellation": True, "auto_gain_control": False, "high_pass_filter": True,
            "noise_suppression": noise_suppression}


def open_apm(rate: int, *, noise_suppression: bool = False, stream_delay_ms: int | None = None,
             direct: bool = True) -> Apm:
    """AEC3 + high-pass (+ noise suppression) at ``rate``: the direct calls where livekit's
    version allows them (the module's docstring), else its Python API. ImportError when livekit
    is not installed or its library does not load; RuntimeError when it refuses to start."""
    options = _options(noise_suppression)
    version = lkffi.installed_version()
    if direct and ".".join(version.split(".")[:2]) in lkffi.TESTED:
        return DirectApm(lkffi.library(), rate, options, stream_delay_ms)
    from livekit import rtc

    if direct:
        if not version.startswith(f"{TESTED_MAJOR}."):
            problem: str | None = f"not the major version they were written for ({TESTED_MAJOR}.x)"
        else:
            problem = probe(rtc, rate, options)
        if problem is None:
            return DirectApm(lkffi.library(), rate, options, stream_delay_ms)
        logger.info("livekit %s: pivoice's direct echo-canceller calls are not used (%s); "
                    "its Python API is (slower)", version, problem)
    module = rtc.AudioProcessingModule(**options)
    if stream_delay_ms is not None:
        module.set_stream_delay_ms(int(stream_delay_ms))
    return WrappedApm(rtc, module, rate)


def probe(rtc: Any, rate: int, options: dict[str, bool], direct: type[DirectApm] = DirectApm) -> str | None:
    """None when ``direct`` calls answer as livekit's Python API does, sample for sample, on a
    few frames of noise (two throwaway modules, so the device's own starts fresh); else why not."""
    frames = (np.random.default_rng(0).standard_normal((8, rate // 100)) * 3000).astype(np.int16)
    try:
        theirs = WrappedApm(rtc, rtc.AudioProcessingModule(**options), rate)   # starts livekit's client
        ours = direct(lkffi.library(), rate, options)
        for played, heard in zip(frames, frames[::-1], strict=True):
            ours.reverse(played)
            theirs.reverse(played)
            if not np.array_equal(ours.capture(heard), theirs.capture(heard)):
                return "they answer otherwise than its Python API"
    except Exception as exc:    # anything livekit changed: the Python API still works
        return f"{type(exc).__name__}: {exc}"
    return None
