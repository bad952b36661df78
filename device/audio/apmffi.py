"""WebRTC's audio processing module (AEC3), called through livekit's native library directly.

``livekit.rtc.AudioProcessingModule`` wraps every 10 ms frame in an ``AudioFrame``, copies it,
builds and serialises a protobuf request, parses the reply and drops its handle, for each of
the two calls a frame takes (the reply, the microphone): about 45 us of Python per call on this
machine, ~0.9 % of a core while the device speaks (a Pi Zero 2 W: ~9 % of its own), beside
~130 us per frame in livekit's library (AEC3 and its request handling). The requests one module
sends differ only in the samples, so :class:`DirectApm` serialises each request once, over a
fixed buffer the frames are copied into, and parses a reply only when it is not the plain
success reply. Its output is bit-identical to the wrapper's (tests/audio/test_apmffi.py).

It relies on what livekit does not document: ``FfiClient.instance._ffi_lib`` (the native
library as livekit loaded it), ``AudioProcessingModule._ffi_handle`` and the requests of its
protobuf module. :func:`open_apm` uses the wrapper, and logs why, for a livekit major version
this was not tested with, or when :func:`probe` finds that the direct calls fail or answer
otherwise than the wrapper on a few frames of noise (a panic in livekit's library ends the
process either way: it is not an exception).

Not thread-safe: one thread calls ``reverse`` and ``capture`` (the canceller's ``process``).
"""

from __future__ import annotations

import ctypes
import logging
from typing import Any, Protocol

import numpy as np

logger = logging.getLogger(__name__)

#: livekit's major version the direct calls were checked against (bit-identical output).
TESTED_MAJOR = 1
_REVERSE, _CAPTURE = "apm_process_reverse_stream", "apm_process_stream"


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


class _Call:
    """One request, serialised once: it points at ``buffer``, whose samples change per frame."""

    def __init__(self, proto: Any, kind: str, handle: int, buffer: np.ndarray, rate: int) -> None:
        request = proto.FfiRequest()
        part = getattr(request, kind)
        part.apm_handle = handle
        part.data_ptr = buffer.ctypes.data
        part.size = buffer.nbytes
        part.sample_rate = rate
        part.num_channels = 1
        self.kind = kind
        self.data = request.SerializeToString()      # kept: the pointer below points into it
        self.pointer = ctypes.cast(ctypes.c_char_p(self.data), ctypes.POINTER(ctypes.c_ubyte))
        ok = proto.FfiResponse()
        getattr(ok, kind).SetInParent()
        self.ok = ok.SerializeToString()


class DirectApm:
    """The same requests as the wrapper's, serialised once, straight into livekit's library."""

    kind = "direct"

    def __init__(self, module: Any, rate: int) -> None:
        from livekit.rtc._ffi_client import FfiClient
        from livekit.rtc._proto import ffi_pb2

        lib = FfiClient.instance._ffi_lib
        self._module = module                    # its handle keeps the native module alive
        self._proto = ffi_pb2
        self._request = lib.livekit_ffi_request
        self._drop = lib.livekit_ffi_drop_handle
        self._reply = ctypes.POINTER(ctypes.c_ubyte)()
        self._reply_len = ctypes.c_size_t()
        self._out = (ctypes.byref(self._reply), ctypes.byref(self._reply_len))
        handle = module._ffi_handle.handle
        n = rate // 100
        self._reverse_buf = np.zeros(n, np.int16)
        self._capture_buf = np.zeros(n, np.int16)
        self._reverse = _Call(ffi_pb2, _REVERSE, handle, self._reverse_buf, rate)
        self._capture = _Call(ffi_pb2, _CAPTURE, handle, self._capture_buf, rate)

    def _call(self, call: _Call) -> None:
        handle = self._request(call.pointer, len(call.data), *self._out)
        if handle == 0:
            # livekit logs the reason ("failed to handle request ...: handle not found").
            raise RuntimeError(f"livekit refused the echo canceller's {call.kind} request "
                               "(livekit's own log says why)")
        try:
            reply = ctypes.string_at(self._reply, self._reply_len.value)
        finally:
            self._drop(handle)
        if reply != call.ok:
            parsed = self._proto.FfiResponse()
            parsed.ParseFromString(reply)
            error = getattr(parsed, call.kind).error
            if error:
                raise RuntimeError(f"echo canceller ({call.kind}): {error}")

    def reverse(self, frame: np.ndarray) -> None:
        self._reverse_buf[:] = frame
        self._call(self._reverse)

    def capture(self, frame: np.ndarray) -> np.ndarray:
        self._capture_buf[:] = frame
        self._call(self._capture)
        return self._capture_buf.copy()


def open_apm(rtc: Any, rate: int, *, noise_suppression: bool = False, stream_delay_ms: int | None = None,
             direct: bool = True) -> Apm:
    """AEC3 + high-pass (+ noise suppression) at ``rate``; direct calls unless livekit changed.

    ``stream_delay_ms`` is given once: AEC3 keeps it as its starting point (the output is the
    same, sample for sample, as giving it before every frame)."""
    options = {"echo_cancellation": True, "high_pass_filter": True, "noise_suppression": noise_suppression}
    module = rtc.AudioProcessingModule(**options)
    if stream_delay_ms is not None:
        module.set_stream_delay_ms(int(stream_delay_ms))
    if direct:
        version = _livekit_version()
        if not version.startswith(f"{TESTED_MAJOR}."):
            problem: str | None = f"not the major version they were tested with ({TESTED_MAJOR}.x)"
        else:
            problem = probe(rtc, rate, options)
        if problem is None:
            return DirectApm(module, rate)
        logger.info("livekit %s: pivoice's direct echo-canceller calls are not used (%s); "
                    "its Python API is (slower)", version, problem)
    return WrappedApm(rtc, module, rate)


def probe(rtc: Any, rate: int, options: dict[str, bool], direct: type[DirectApm] = DirectApm) -> str | None:
    """None when ``direct`` calls answer as livekit's Python API does, sample for sample, on a
    few frames of noise (two throwaway modules, so the device's own starts fresh); else why not."""
    frames = (np.random.default_rng(0).standard_normal((8, rate // 100)) * 3000).astype(np.int16)
    try:
        ours = direct(rtc.AudioProcessingModule(**options), rate)
        theirs = WrappedApm(rtc, rtc.AudioProcessingModule(**options), rate)
        for played, heard in zip(frames, frames[::-1], strict=True):
            ours.reverse(played)
            theirs.reverse(played)
            if not np.array_equal(ours.capture(heard), theirs.capture(heard)):
                return "they answer otherwise than its Python API"
    except Exception as exc:    # anything livekit changed: the Python API still works
        return f"{type(exc).__name__}: {exc}"
    return None


def _livekit_version() -> str:
    try:
        from livekit.rtc.version import __version__
    except ImportError:
        return "unknown"
    return str(__version__)
