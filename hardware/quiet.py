"""Keep the audio libraries' chatter out of stderr (and so out of the journal), and slow down
the log of a device that keeps failing.

libasound prints every configuration and open error to stderr ("ALSA lib pcm.c:...: Unknown PCM
default"), and PortAudio's JACK host API makes libjack print its own ("jack server is not
running or cannot be started") each time PortAudio initialises; with no sound card and a retry
every few seconds that filled the journal (issue 15: 2,329 lines in 40 s). Both libraries let a
program replace their printer: ``snd_lib_error_set_handler`` and ``jack_set_error_function`` /
``jack_set_info_function``. The handlers here count what they are handed and log it at DEBUG.
They are installed once, before PortAudio first loads, and kept referenced for the life of the
process (the libraries keep the C pointer). PortAudio links the same shared objects, so this
reaches its calls. ``JACK_NO_START_SERVER`` stops libjack from trying to launch a jackd.
"""

from __future__ import annotations

import ctypes
import logging
import os
import threading
from typing import Any

logger = logging.getLogger(__name__)

#: Messages swallowed per library ("alsa", "jack"), for `pivoice doctor` and tests.
counts = {"alsa": 0, "jack": 0}
_lock = threading.Lock()
_keep: list[Any] = []  # the C callbacks: freed callbacks would crash the libraries

# void (*)(const char *file, int line, const char *function, int err, const char *fmt, ...)
# The variadic tail is not read; on x86_64 and aarch64 Linux ignoring it is safe.
_ALSA_HANDLER = ctypes.CFUNCTYPE(None, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p)
_JACK_HANDLER = ctypes.CFUNCTYPE(None, ctypes.c_char_p)


def _text(raw: bytes | None) -> str:
    return (raw or b"").decode("utf-8", "replace").strip()


def _on_alsa(file: bytes | None, line: int, function: bytes | None, err: int, fmt: bytes | None) -> None:
    with _lock:
        counts["alsa"] += 1
    logger.debug("ALSA lib %s:%d (%s) %s [err %d]", _text(file), line, _text(function), _text(fmt), err)


def _on_jack(message: bytes | None) -> None:
    with _lock:
        counts["jack"] += 1
    logger.debug("libjack: %s", _text(message))


def install() -> dict[str, bool]:
    """Route both libraries' messages to the handlers above (idempotent). Returns which
    libraries were found; a missing one has nothing to say."""
    if _keep:
        return {"alsa": _keep[0] is not None, "jack": _keep[1] is not None}
    os.environ.setdefault("JACK_NO_START_SERVER", "1")
    alsa = jack = None
    try:
        lib = ctypes.CDLL("libasound.so.2")
        alsa = _ALSA_HANDLER(_on_alsa)
        lib.snd_lib_error_set_handler(alsa)
    except (OSError, AttributeError) as exc:
        logger.debug("libasound not quietened: %s", exc)
        alsa = None
    try:
        lib = ctypes.CDLL("libjack.so.0")
        jack = _JACK_HANDLER(_on_jack)
        lib.jack_set_error_function(jack)
        lib.jack_set_info_function(jack)
    except (OSError, AttributeError) as exc:
        logger.debug("libjack not quietened: %s", exc)
        jack = None
    _keep.extend([alsa, jack])
    return {"alsa": alsa is not None, "jack": jack is not None}


class RetryLog:
    """Log a failure that repeats while it is retried: the first time with its cause, then after
    2, 4, 8, ... attempts (at most every ``max_every``), again whenever the cause changes, and
    once when it clears. With retries every 10 s that is about a dozen lines a day, not 8,640."""

    def __init__(self, log: logging.Logger, what: str, *, max_every: int = 256) -> None:
        self.log, self.what, self.max_every = log, what, max_every
        self._cause: str | None = None
        self._attempts = 0
        self._next = 1

    def failed(self, cause: object) -> None:
        text = str(cause)
        if text != self._cause:
            self._cause, self._attempts, self._next = text, 0, 1
        self._attempts += 1
        if self._attempts < self._next:
            return
        if self._attempts == 1:
            self.log.error("%s: %s", self.what, text)
        else:
            self.log.warning("%s: still failing after %d attempts: %s", self.what, self._attempts, text)
        self._next = self._attempts + min(self._attempts, self.max_every)

    def cleared(self) -> None:
        if self._attempts > 1:
            self.log.info("%s: working again after %d attempts", self.what, self._attempts)
        self._cause, self._attempts, self._next = None, 0, 1
