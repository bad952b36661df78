"""livekit's native library (``liblivekit_ffi``), spoken to without livekit's Python package.

The echo canceller (apmffi.py) needs four requests of livekit's library: a new audio processing
module, its stream delay, and the two 10 ms calls. livekit's Python package would serialise them
with protobuf, and importing it loads protobuf and ~45 generated modules (rooms, tracks, video,
statistics...): with the check that compared our calls with it at start, 8 MB of the daemon's
resident memory after a conversation (76 -> 68 MB), for messages of a few bytes. Here the
library is loaded from livekit's installed package with ctypes, started with a callback of ours,
and the few messages are written and read in protobuf's wire format by hand (:func:`message`,
:func:`fields`). tests/audio/test_apmffi.py checks every request byte for byte against livekit's
own protobuf classes, and the canceller's output sample for sample against its Python API.

What this relies on (livekit's C ABI and message numbers) is only used for the livekit versions
in :data:`TESTED`; apmffi.open_apm takes livekit's Python package for any other.

Events: the library sends its log records (a tokio task forwards them as they are logged) and
the panics it catches through the callback. Log records go to the ``livekit`` logger (debug and
trace dropped); a caught panic is logged as an error, and the refusal that follows quotes it.
A panic inside AEC3's processing is not caught: the library aborts the process, and systemd
restarts the service (``Restart=on-failure``).

One callback per process: where livekit's own Python client starts the library after us (the
tests do; the daemon never imports it for a tested version), it takes the events over, and its
handler ends the process on a panic.
"""

from __future__ import annotations

import atexit
import ctypes
import importlib.metadata
import importlib.util
import logging
import os
import platform
import sys
import threading
from typing import Any

logger = logging.getLogger("livekit")

#: livekit (Python package) versions, major.minor, whose library this module was checked against
TESTED = ("1.2",)

# FfiEvent's fields (livekit's ffi.proto), and LogLevel's values
_EVENT_LOGS, _EVENT_PANIC = 18, 20
_LEVELS = {0: logging.ERROR, 1: logging.WARNING, 2: logging.INFO}

_CALLBACK_TYPE = ctypes.CFUNCTYPE(None, ctypes.POINTER(ctypes.c_uint8), ctypes.c_size_t)


# -- protobuf's wire format: varints and length-delimited fields, the two these messages use --

def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        if not value:
            out.append(low)
            return bytes(out)
        out.append(low | 0x80)


def message(*items: tuple[int, int | bool | bytes]) -> bytes:
    """Fields in the order given: ints and bools as varints, bytes length-delimited (a nested
    message, a string). Every field given is written, False and 0 included (livekit's messages
    are proto2: a field that is set is sent)."""
    out = bytearray()
    for number, value in items:
        if isinstance(value, bytes):
            out += _varint(number << 3 | 2) + _varint(len(value)) + value
        elif value < 0:   # int32's negatives take ten bytes; none of these messages has one
            raise ValueError(f"field {number}: {value} is negative")
        else:
            out += _varint(number << 3) + _varint(int(value))
    return bytes(out)


def fields(data: bytes) -> list[tuple[int, int | bytes]]:
    """One level of a message: (field number, varint or bytes), in order. Fixed-width fields are
    returned as their raw bytes. ValueError on a truncated or unknown encoding."""
    out: list[tuple[int, int | bytes]] = []
    i, end = 0, len(data)

    def varint() -> int:
        nonlocal i
        value = shift = 0
        while True:
            if i >= end or shift > 63:
                raise ValueError("truncated varint")
            byte = data[i]
            i += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                return value

    while i < end:
        key = varint()
        number, wire = key >> 3, key & 7
        if wire == 0:
            out.append((number, varint()))
            continue
        size = {1: 8, 5: 4}.get(wire)
        if wire == 2:
            size = varint()
        if size is None or i + size > end:
            raise ValueError(f"field {number}: wire type {wire} cut short or unknown")
        out.append((number, bytes(data[i:i + size])))
        i += size
    return out


def field(data: bytes, number: int) -> int | bytes | None:
    """The last value of field ``number`` in ``data`` (protobuf's rule), or None."""
    found = None
    for n, value in fields(data):
        if n == number:
            found = value
    return found


class NotInstalled(ImportError):
    """livekit's package is not installed (the ``aec`` extra)."""


# -- the library ------------------------------------------------------------------------------

class Reply:
    """Where the library puts a reply: its address and length (reused, call after call)."""

    def __init__(self) -> None:
        self.data = ctypes.POINTER(ctypes.c_ubyte)()
        self.size = ctypes.c_size_t()
        self.out = (ctypes.byref(self.data), ctypes.byref(self.size))


class Library:
    """livekit's loaded library: its request entry points, and its version."""

    def __init__(self, lib: Any, version: str) -> None:
        self.lib = lib
        self.version = version
        self._request = lib.livekit_ffi_request
        self.drop_handle = lib.livekit_ffi_drop_handle
        self.panic: str | None = None   # a caught panic not yet quoted by a refusal
        self.callback: Any = None       # ours, when we started it

    def send(self, pointer: Any, length: int, what: str, reply: Reply) -> bytes:
        """One request already in memory (``length`` bytes at ``pointer``); the reply's bytes.
        RuntimeError, naming ``what``, when the library refuses it."""
        handle = self._request(pointer, length, *reply.out)
        if handle == 0:
            raise RuntimeError(f"livekit refused the {what} request ({self.refusal()})")
        try:
            return ctypes.string_at(reply.data, reply.size.value)
        finally:
            self.drop_handle(handle)

    def request(self, payload: bytes, what: str) -> bytes:
        """Send one request, return the reply's bytes; RuntimeError when the library refuses."""
        data = (ctypes.c_ubyte * len(payload)).from_buffer_copy(payload)
        return self.send(data, len(payload), what, Reply())

    def refusal(self) -> str:
        """Why a request was refused, as far as we know: the panic reported since the last
        refusal (quoted once), else livekit's log."""
        panic, self.panic = self.panic, None
        return f"it panicked: {panic}" if panic else "livekit's own log says why"


def installed_version() -> str:
    """livekit's version (its package metadata); ImportError when it is not installed."""
    try:
        return importlib.metadata.version("livekit")
    except importlib.metadata.PackageNotFoundError as exc:
        raise NotInstalled("livekit is not installed") from exc


def library_path() -> str:
    """``LIVEKIT_LIB_PATH`` when set (livekit's own override), else the library livekit's
    package ships, found without importing it."""
    override = os.environ.get("LIVEKIT_LIB_PATH", "").strip()
    if override:
        return override
    spec = importlib.util.find_spec("livekit.rtc")
    if spec is None or not spec.submodule_search_locations:
        raise NotInstalled("livekit is not installed")
    name = {"Linux": "liblivekit_ffi.so", "Darwin": "liblivekit_ffi.dylib"}.get(platform.system(), "livekit_ffi.dll")
    return os.path.join(list(spec.submodule_search_locations)[0], "resources", name)


_lock = threading.Lock()
_library: Library | None = None


def library() -> Library:
    """The process's library, loaded and started on first use (once per process). Where
    livekit's Python client already started it, that one is used as it is."""
    global _library
    with _lock:
        if _library is None:
            _library = _borrowed() or _start()
        return _library


def _borrowed() -> Library | None:
    client = sys.modules.get("livekit.rtc._ffi_client")
    instance = getattr(getattr(client, "FfiClient", None), "_instance", None)
    lib = getattr(instance, "_ffi_lib", None)
    return None if lib is None else Library(lib, installed_version())


def _start() -> Library:
    version = installed_version()
    path = library_path()
    try:
        lib = ctypes.CDLL(path)
    except OSError as exc:
        raise ImportError(f"failed to load {path}: {exc}") from None
    lib.livekit_ffi_initialize.argtypes = [_CALLBACK_TYPE, ctypes.c_bool, ctypes.c_char_p, ctypes.c_char_p]
    lib.livekit_ffi_initialize.restype = None
    lib.livekit_ffi_request.argtypes = [ctypes.POINTER(ctypes.c_ubyte), ctypes.c_size_t,
                                        ctypes.POINTER(ctypes.POINTER(ctypes.c_ubyte)),
                                        ctypes.POINTER(ctypes.c_size_t)]
    lib.livekit_ffi_request.restype = ctypes.c_uint64
    lib.livekit_ffi_drop_handle.argtypes = [ctypes.c_uint64]
    lib.livekit_ffi_drop_handle.restype = ctypes.c_bool
    lib.livekit_ffi_dispose.argtypes = []
    lib.livekit_ffi_dispose.restype = None
    library = Library(lib, version)
    callback = _CALLBACK_TYPE(lambda data, size: _on_event(library, ctypes.string_at(data, size)))
    library.callback = callback   # kept alive while the library may call it
    # The library starts a tokio runtime with a worker per core (4 on a Pi Zero 2 W); the
    # canceller's requests run on the caller's thread, so one worker is plenty (its log
    # forwarding). Read as the runtime is built, in initialize; a value the admin set is kept,
    # and ours is not left for the processes the daemon starts.
    ours = "TOKIO_WORKER_THREADS" not in os.environ
    if ours:
        os.environ["TOKIO_WORKER_THREADS"] = "1"
    try:
        lib.livekit_ffi_initialize(callback, True, b"python", version.encode("ascii", "replace"))
    finally:
        if ours:
            del os.environ["TOKIO_WORKER_THREADS"]
    # Before the interpreter goes: the library stops sending events (its log flush would call
    # into a finalised interpreter).
    atexit.register(lib.livekit_ffi_dispose)
    return library


def _on_event(library: Library, event: bytes) -> None:
    """One FfiEvent from the library's threads: log records and panics; nothing else is asked for."""
    try:
        for number, value in fields(event):
            if number == _EVENT_LOGS and isinstance(value, bytes):
                for n, record in fields(value):
                    if n == 1 and isinstance(record, bytes):
                        _log(record)
            elif number == _EVENT_PANIC and isinstance(value, bytes):
                text = field(value, 1)
                library.panic = text.decode("utf-8", "replace") if isinstance(text, bytes) else "(no message)"
                logger.error("livekit's library panicked: %s", library.panic)
    except Exception:   # never let an exception unwind into the library's thread
        logger.exception("an event from livekit's library could not be read")


def _log(record: bytes) -> None:
    """A LogRecord: level 1, target 2, line 5, message 6."""
    parts = dict(fields(record))
    raw = parts.get(1, 0)
    level = _LEVELS.get(raw) if isinstance(raw, int) else logging.ERROR
    if level is None:   # debug and trace: livekit's Python package drops them too
        return
    target, text = (parts.get(n, b"") for n in (2, 6))
    logger.log(level, "%s: %s", _text(target), _text(text))


def _text(value: int | bytes) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
