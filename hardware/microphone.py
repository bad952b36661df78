"""The microphone: PyAudio capture, read by a thread of ours (see :class:`Microphone`)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from .bridge import LoopBridge
from .interfaces import Gap
from .pacing import BURST_S, Pacer
from .portaudio import PortAudioDevice, close_quietly

logger = logging.getLogger(__name__)

PA_INPUT_OVERFLOWED = -9981   # PortAudio's paInputOverflowed, as PyAudio raises it


class Microphone(PortAudioDevice):
    """PyAudio capture by blocking reads on a reader thread of ours. ``on_audio(pcm, gap)``
    is called on the event loop (``gap``: :class:`hardware.interfaces.Gap`).

    The period (how much audio is handed over at a time, and so how often the process wakes)
    can change while it runs: :meth:`set_period`; the reader reopens the stream at the new
    period after its current read (what the old stream still held is handed over first; the
    milliseconds the reopen takes may be lost, none through PulseAudio here, and the first
    period after it says so, ``Gap.REOPEN``, so the pipeline takes its clock afresh; not an
    overflow). The stream's own period
    is the read's: reading 100 ms from a 50 ms stream woke the process 82 times a second
    instead of 50 in a silent room.

    A stream is read only once a whole period is waiting in it. PortAudio's blocking read
    spins on the sound server's plugin until its stream delivers: through PulseAudio a whole
    core for the first ~2 s of the process and ~90 ms of CPU at each reopen (0.4 ms when it
    waits; README "Audio"). Reads instead of PortAudio's callback also take the callback and
    its hand-over off the path (0.62 against 0.79 % of a core at 50 ms, microphone alone
    through PulseAudio). A reader held up (the GIL) catches up by itself: its next reads find
    the audio waiting and return at once.

    An overflow (the sound card's buffer filled before it was read: audio lost) makes PyAudio
    close the stream; the reader opens it again and says so (``Gap.OVERFLOW``). Any other read
    error (unplugged), or a new stream that fails or delivers nothing for SETTLE_LIMIT_S,
    ends the reader: not alive, and :func:`hardware.keepopen.keep_open` reopens the device.
    The stream belongs to the reader thread: it closes it on its way out, so :meth:`close`
    never frees a stream under a read that has not returned (a stalled sound server).

    The hand-over is bounded: about ``QUEUED_S`` of audio waits for the event loop; past that
    the reader waits for the loop (the sound server's buffer or the card's holds the rest; past
    that, an overflow as above: the loop was held up). A source with no clock (ALSA's ``null``,
    the file plugin) is paced to real time (:mod:`hardware.pacing`, its clock from the moment
    the stream was opened: what a card captured while the reader was held up can never count
    against it), said in the log once each time the microphone is opened, and in
    ``unclocked``."""

    SETTLE_POLL_S = 0.005
    #: a stream that has not delivered a period this long after opening is given up (the reader
    #: ends; keep_open opens the device again). PulseAudio's first stream takes ~2 s here.
    SETTLE_LIMIT_S = 5.0
    #: audio handed to the event loop and not yet taken, at most (then the reader waits)
    QUEUED_S = 2.0

    def __init__(self, device: str, on_audio: Callable[[bytes, int], None], *, bridge: LoopBridge,
                 period_ms: int = 50, preferred_rate: int | None = None, channels: int | None = None) -> None:
        self.device_name = device
        self.want_channels = channels
        self.on_audio = on_audio
        self.bridge = bridge
        self.period_ms = period_ms
        self.preferred_rate = preferred_rate
        self._init_stream_state()
        self._opening_ms = period_ms
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.overflows = 0
        self.reopens = 0       # at a new period
        self.unclocked = False     # delivers faster than real time: paced (hardware/pacing.py)
        self._opened_at = 0.0      # when the stream being read was opened (the reader's)
        self.loop_behind = 0       # times the reader waited for the event loop to take its audio

    def _buffer_ms(self) -> int:
        return self._opening_ms

    def open(self) -> None:
        self._opening_ms = self.period_ms
        self._opened_at = time.monotonic()   # the pacer's clock starts here (hardware/pacing.py)
        self._open_stream()
        self.unclocked = False
        self._thread = threading.Thread(target=self._read_loop, args=(self._stop, self._pa, self._stream,
                                                                      self._opening_ms),
                                        name="microphone", daemon=True)
        self._thread.start()

    def _read_loop(self, stop: threading.Event, pa: Any, stream: Any, stream_ms: int) -> None:
        gap = Gap.NONE
        slots = self._slots(stream_ms)
        try:
            while not stop.is_set():
                if self.period_ms != stream_ms:       # a new period: hand over the rest, reopen
                    stream_ms = self.period_ms
                    rest = self._rest(stream)
                    if rest and not stop.is_set():
                        if not self._hand_over(slots, rest, gap, stop):
                            return
                        gap = Gap.NONE
                    stream = self._reopen(pa, stream, stream_ms, stop)
                    if stream is None:
                        return
                    slots = self._slots(stream_ms)    # what is in flight frees the old one's
                    self.reopens += 1
                    gap = gap or Gap.REOPEN           # an overflow not yet reported stays one
                frames = self.rate * stream_ms // 1000
                if not self._settle(stream, frames, stop):
                    return
                pacer = self._pacer()
                while not stop.is_set() and self.period_ms == stream_ms:
                    try:
                        pcm = stream.read(frames, exception_on_overflow=True)
                    except OSError as exc:
                        if exc.errno != PA_INPUT_OVERFLOWED:
                            if not stop.is_set():
                                logger.error("microphone read failed: %s", exc)
                            return
                        self._overflowed()
                        stream = self._reopen(pa, stream, stream_ms, stop)
                        if stream is None or not self._settle(stream, frames, stop):
                            return
                        pacer = self._pacer()
                        gap = Gap.OVERFLOW
                        continue
                    if stop.is_set() or not self._hand_over(slots, pcm, gap, stop):
                        return      # closed meanwhile: this period is no longer anyone's
                    gap = Gap.NONE
                    if not self._paced(pacer, frames, stop):
                        return
        finally:
            self._release(pa, stream)

    def _hand_over(self, slots: threading.Semaphore, pcm: bytes, gap: Gap, stop: threading.Event) -> bool:
        """Post a period to the loop once fewer than QUEUED_S wait there (False: closing)."""
        if not slots.acquire(blocking=False):
            self.loop_behind += 1
            while not slots.acquire(timeout=0.1):
                if stop.is_set():
                    return False
        self.bridge.post(self._deliver, slots, pcm, gap)
        return True

    def _deliver(self, slots: threading.Semaphore, pcm: bytes, gap: Gap) -> None:
        try:
            self.on_audio(pcm, gap)
        finally:
            slots.release()

    def _slots(self, period_ms: int) -> threading.Semaphore:
        return threading.Semaphore(max(4, int(1000 * self.QUEUED_S) // period_ms))

    def _pacer(self) -> Pacer:
        """For the stream last opened; a source found unclocked is paced from its first read."""
        return Pacer(self.rate, self._opened_at, burst_s=0.0 if self.unclocked else BURST_S)

    def _paced(self, pacer: Pacer, frames: int, stop: threading.Event) -> bool:
        """Wait until the next read is due when the source has no clock (False: closing)."""
        now = time.monotonic()
        due = pacer.delivered(frames, now)
        if pacer.unclocked and not self.unclocked:
            self.unclocked = True
            logger.warning("microphone %r delivers audio faster than real time (%.1f s of it in %.1f s): it is not "
                           "a sound card with a clock (ALSA's null device, a file?); it is read at real time from "
                           "now on. Set [audio] input_device to the microphone (`pivoice devices` lists them)",
                           self.device_name, pacer.audio_s, now - pacer.start)
        return due <= now or not stop.wait(due - now)

    def _settle(self, stream: Any, frames: int, stop: threading.Event) -> bool:
        """Wait until a whole read is waiting in a stream just opened (see the class); a look
        every 5 ms, then less often (up to 50 ms) for a source that takes its time. False when
        the stream failed (PortAudio answers a negative error code here, it does not raise), it
        delivered nothing for SETTLE_LIMIT_S, or the microphone is being closed."""
        poll, deadline = self.SETTLE_POLL_S, time.monotonic() + self.SETTLE_LIMIT_S
        while not stop.is_set():
            try:
                waiting = stream.get_read_available()
            except OSError as exc:
                waiting, failure = -1, str(exc)
            else:
                failure = f"PortAudio error {waiting}"
            if waiting >= frames:
                return True
            if waiting < 0 or time.monotonic() > deadline:
                logger.error("microphone failed: %s", failure if waiting < 0 else
                             f"no audio {self.SETTLE_LIMIT_S:g} s after opening its stream")
                return False
            stop.wait(poll)
            poll = min(poll * 1.5, 0.05)
        return False

    @staticmethod
    def _rest(stream: Any) -> bytes:
        try:
            waiting = stream.get_read_available()
            return bytes(stream.read(waiting, exception_on_overflow=False)) if waiting > 0 else b""
        except OSError:
            return b""

    def _reopen(self, pa: Any, old: Any, period_ms: int, stop: threading.Event) -> Any:
        """The same device and rate at ``period_ms``; None when that failed (or closing)."""
        try:
            old.close()    # also after an overflow, which PyAudio closed: it leaves PyAudio's list
        except OSError:
            pass
        if stop.is_set():
            return None
        try:
            opened = time.monotonic()
            stream = pa.open(frames_per_buffer=self.rate * period_ms // 1000, **self._stream_args)
        except OSError as exc:   # unplugged meanwhile: not alive; keep_open reopens it
            logger.error("microphone reopen at %d ms periods failed: %s", period_ms, exc)
            return None
        if self._stop is stop:     # still this reader's microphone (not closed meanwhile)
            self._stream, self._opened_at = stream, opened
        return stream

    def _overflowed(self) -> None:
        self.overflows += 1
        if self.overflows in (1, 10, 100, 1000) or self.overflows % 10000 == 0:   # not one line each
            logger.warning("microphone overflowed (audio was lost; %d time(s) so far): the process was "
                           "held up longer than the sound card's buffer; stream reopened", self.overflows)

    def _release(self, pa: Any, stream: Any) -> None:
        """The reader's way out: its stream closed here; PortAudio's terminate on the loop's
        thread, where the speaker initialises and terminates PortAudio (its count is not locked)."""
        close_quietly(stream)
        self.bridge.post(_terminate, pa)

    def set_period(self, period_ms: int) -> None:
        """Hand over ``period_ms`` of audio at a time, from the reader's next read (any thread)."""
        self.period_ms = period_ms

    @property
    def alive(self) -> bool:
        return bool(self._thread and self._thread.is_alive())

    def close(self) -> None:
        """Stop the reader; it closes its stream once its read returns (within a period, or
        whenever a stalled sound server lets it: this does not wait for that)."""
        stop, self._stop = self._stop, threading.Event()    # the next open()'s reader is another
        stop.set()
        if self._thread is not None:
            self._thread.join(timeout=0.5 + self.period_ms / 1000)
            if self._thread.is_alive():
                logger.warning("microphone: a read has not returned; its stream is closed when it does")
            self._thread = None
        self._stream = self._pa = None


def _terminate(pa: Any) -> None:
    try:
        pa.terminate()
    except OSError:
        pass
