"""systemd integration: sd_notify (READY, STATUS, WATCHDOG, STOPPING) and journald logging.

``Type=notify`` services tell systemd how they are through a datagram socket named in
``$NOTIFY_SOCKET``; the protocol is one ``FIELD=value`` line per field, written here directly
so it also works where systemd-python is not installed (journald logging uses systemd-python).
Outside systemd there is no socket and every call is a no-op.

The watchdog is only fed while the device is really alive (:func:`health_problems` is empty):
microphone frames arriving, the Realtime link up or correctly backing off, playback moving.
A process that hangs, or a device whose audio stopped, is then restarted by systemd.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import sys
import time
from collections.abc import Callable, Mapping

from .bus import EventBus

logger = logging.getLogger(__name__)


class Notifier:
    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        self.address = env.get("NOTIFY_SOCKET") or None
        usec = env.get("WATCHDOG_USEC") or ""
        pid = env.get("WATCHDOG_PID")
        watched = usec.isdigit() and (not pid or pid == str(os.getpid()))
        #: Seconds between watchdog pings (half the unit's WatchdogSec), or None.
        self.watchdog_interval_s = int(usec) / 2e6 if watched else None
        self.dropped = 0
        self._sock: socket.socket | None = None

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def notify(self, message: str) -> bool:
        if not self.address:
            return False
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                self._sock.setblocking(False)  # the event loop must never wait for systemd
            address = "\0" + self.address[1:] if self.address.startswith("@") else self.address
            self._sock.sendto(message.encode(), address)
            return True
        except BlockingIOError:
            self.dropped += 1  # systemd is not reading (or a test is not): drop, do not stall
            return False
        except OSError as exc:
            logger.warning("sd_notify to %s failed: %s", self.address, exc)
            return False

    def ready(self, status: str) -> bool:
        return self.notify(f"READY=1\nSTATUS={status}\nMAINPID={os.getpid()}")

    def status(self, status: str) -> bool:
        return self.notify(f"STATUS={status}")

    def watchdog(self) -> bool:
        return self.notify("WATCHDOG=1")

    def stopping(self, status: str = "stopping") -> bool:
        return self.notify(f"STOPPING=1\nSTATUS={status}")

    def reloading(self) -> bool:
        return self.notify("RELOADING=1")

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


STATUS_EVERY_S = 5.0
COMPLAIN_EVERY_S = 10.0


async def report_to_systemd(notifier: Notifier, bus: EventBus, status_line: Callable[[], str],
                            health: Callable[[], list[str]]) -> None:
    """``STATUS=`` every few seconds and on every bus event that changes it; ``WATCHDOG=1``
    only while ``health()`` finds nothing wrong (then the complaint is logged, now and then)."""
    interval = notifier.watchdog_interval_s
    tick = min(interval, STATUS_EVERY_S) if interval else STATUS_EVERY_S
    events = bus.subscribe(maxsize=50)
    last_status, last_complaint = "", 0.0
    try:
        while True:
            with contextlib.suppress(TimeoutError):
                # asyncio.timeout, not wait_for: with events arriving all the time, wait_for
                # (Python 3.11) can return the event and swallow the task's cancellation.
                async with asyncio.timeout(tick):
                    await events.get()
            line = status_line()
            if line != last_status:
                notifier.status(line)
                last_status = line
            if interval:
                problems = health()
                if not problems:
                    notifier.watchdog()
                elif time.monotonic() - last_complaint > COMPLAIN_EVERY_S:
                    last_complaint = time.monotonic()
                    logger.error("not feeding the watchdog: %s", "; ".join(problems))
    finally:
        events.close()


def health_problems(*, now: float, last_mic_frame: float, started: float, link: str, link_open: bool,
                    playback_active: bool, last_speaker_write: float, audio_problem: str | None,
                    stall_s: float = 3.0) -> list[str]:
    """Why the device is not alive, or [] when it is. Pure: every time is an argument.

    An audio device that is missing and being retried is not a hang (the supervisor reports it
    and retries); a microphone that is open but delivers nothing is.
    """
    problems = []
    if audio_problem is None and now - max(last_mic_frame, started) > stall_s:
        problems.append(f"no microphone frames for {now - max(last_mic_frame, started):.1f} s")
    if link == "up" and not link_open:
        problems.append("the Realtime connection is closed but not being replaced")
    if playback_active and now - max(last_speaker_write, started) > stall_s:
        problems.append(f"playback stalled for {now - max(last_speaker_write, started):.1f} s")
    return problems


def journal_logging(level: int) -> bool:
    """Log to journald with structured fields when running under systemd; True if it did."""
    if not os.environ.get("JOURNAL_STREAM") and not os.environ.get("INVOCATION_ID"):
        return False
    try:
        from systemd.journal import JournalHandler
    except ImportError:
        return False
    handler = JournalHandler(SYSLOG_IDENTIFIER="pivoice")
    handler.setFormatter(logging.Formatter("%(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    return True


def console_logging(level: int) -> None:
    logging.basicConfig(level=level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        force=True)
