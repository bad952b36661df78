"""Microphone and speaker through PyAudio (PortAudio, ALSA), at rates the device supports.

Many USB and I2S devices only do 44.1 or 48 kHz ("Invalid sample rate -9997", field notes
item 9), and the ReSpeaker 2-mic HAT only gives stereo: devices are opened at a rate and
channel count they accept, and the audio pipeline converts. The microphone is read by a
thread of ours, which only posts each period to the loop (see hardware.bridge); the speaker is
written by another, one period at a time, from the playback buffer.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from .microphone import Microphone as Microphone
from .portaudio import RATES as RATES
from .portaudio import DeviceInfo as DeviceInfo
from .portaudio import PortAudioDevice
from .portaudio import _pyaudio as _pyaudio
from .portaudio import find_device as find_device
from .portaudio import list_devices as list_devices
from .portaudio import negotiate as negotiate

logger = logging.getLogger(__name__)


class BufferFill:
    """What the speaker holds that nobody has heard yet, for any thread. :meth:`lead`: the
    device's buffer, measured by the writer before each read, plus each period written, counted
    down by the clock (the card plays in real time); the next read's audio is heard after it.
    :meth:`unheard`: that, plus what the writer is taking, from before its read hands anything
    out until its write has put it in the buffer: what a talk-over queues again and a barge-in
    does not count as heard. Sans-I/O: the times are given. One tuple, replaced whole (only the
    writer replaces it), so a reader on another thread never sees a new amount with an old time."""

    def __init__(self) -> None:
        self._state = (0.0, 0.0, 0.0)     # (seconds in the buffer, at, seconds being taken)

    def measured(self, seconds: float, now: float) -> None:
        self._state = (seconds, now, 0.0)

    def taking(self, seconds: float) -> None:
        held, at, _ = self._state
        self._state = (held, at, seconds)

    def wrote(self, seconds: float, now: float) -> None:
        self._state = (self.lead(now) + seconds, now, 0.0)

    def lead(self, now: float) -> float:
        held, at, _ = self._state
        return max(0.0, held - (now - at))

    def unheard(self, now: float) -> float:
        held, at, taking = self._state
        return max(0.0, held - (now - at)) + taking


class Speaker(PortAudioDevice):
    """PyAudio playback from a reader function, on a writer thread of ours.

    ``read(nbytes)`` returns mono PCM16 at ``self.rate`` (the device's own rate, known once
    open; b"" for silence): the device resamples the downlink once, to this rate, before it
    gets here. The writer keeps at most ``ahead_ms`` of audio ahead of real time, so a flush
    silences the device within that, even on outputs that do not pace writes (ALSA's file
    plugin; up to ``ahead_ms`` + one period there). A reply is written ``period_ms`` at a time,
    silence ``quiet_ms`` at a time (after audio, the first read is still a whole period): 40 ms
    periods halve the wake-ups of this thread and of the sound server's client thread while a
    reply plays (README "Audio"). The device's buffer is two periods: through PulseAudio ~93 ms
    ahead while a reply plays instead of 60 (``lead_s``; the echo reference is stamped with it,
    and a barge-in drops it); the first sample of a reply reached the speaker as soon as before
    in the real-time bench (60-76 ms after the first delta). ``unheard_s`` is that and the period
    being taken or written (:class:`BufferFill`): a talk-over's hold queues that much again, and
    a barge-in's truncation does not count it as heard.

    With ``idle_pause_s``, after that long with nothing to play the stream is stopped and the
    thread sleeps until :meth:`wake` (reply audio queued): no silence is written 50 times a
    second while nobody talks, which is most of the CPU a silent device spends (README
    "Audio"). Restarting takes a few milliseconds, inside the playback prebuffer.

    :meth:`hush` drops what the device's buffer holds (PortAudio's abort: ALSA's drop), so a
    person who talks over a reply is not made to hear the rest of that buffer."""

    output = True

    def __init__(self, device: str, read: Callable[[int], bytes], *, period_ms: int = 40, quiet_ms: int = 20,
                 ahead_ms: int = 40, preferred_rate: int | None = None, clock: Callable[[], float] = time.monotonic,
                 idle_pause_s: float | None = None) -> None:
        self.device_name = device
        self.read = read
        self.period_ms = period_ms
        self.quiet_ms = min(quiet_ms, period_ms)
        self.idle_pause_s = idle_pause_s
        self._resume = threading.Event()
        self._hush = threading.Event()
        self.hushes = 0
        self._woken_at = 0.0
        self.paused = False
        self.pauses = 0
        self.ahead_ms = ahead_ms
        self.preferred_rate = preferred_rate
        self.clock = clock
        self._init_stream_state()
        self.first_write_after: Callable[[], None] | None = None
        self.errors = 0
        self._thread: threading.Thread | None = None
        self._running = threading.Event()
        self.last_write = 0.0
        self.ahead_s = 0.0  # audio handed to ALSA but not yet due to play, as of the last write
        self.fill = BufferFill()
        self._buffer_frames = 0

    @property
    def lead_s(self) -> float:
        """How long until the audio the next read hands over is heard: what the device's buffer
        holds now. The pipeline stamps its echo reference with it (so the canceller's delay is
        the same for a stream that just started, with an empty buffer, as for one that has been
        running, with a full one)."""
        return self.fill.lead(self.clock())

    @property
    def unheard_s(self) -> float:
        """What it holds that nobody has heard yet, the period it is taking or writing included:
        what a talk-over queues again, and a barge-in does not count as played."""
        return self.fill.unheard(self.clock())

    def open(self) -> None:
        self._open_stream()
        self._buffer_frames = self._free_frames()
        self._running.set()
        self._thread = threading.Thread(target=self._write_loop, name="speaker", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """Audio is queued, or soon will be: resume a paused stream (any thread). The idle
        time counts afresh from here."""
        self._woken_at = self.clock()
        self._resume.set()

    def hush(self) -> None:
        """Drop what the device's buffer holds, as soon as the writer can (any thread): it
        wakes for it, aborts the stream (the buffer is dropped, not played out) and starts
        it again."""
        self._hush.set()

    def _write_loop(self) -> None:
        # Audio goes out a period at a time (fewer wake-ups of this thread and of the sound
        # server's while a reply plays); between replies the writer asks for a shorter piece,
        # so it notices a reply that arrives sooner. What is written is always what was asked
        # for: the pipeline pads its echo reference to the same length.
        full = self.rate * self.period_ms // 1000 * 2
        quiet = self.rate * self.quiet_ms // 1000 * 2
        period = quiet
        start, written_s = self.clock(), 0.0
        idle_since: float | None = None
        while self._running.is_set():
            ahead = written_s - (self.clock() - start)
            if ahead > self.ahead_ms / 1000:
                self._hush.wait(ahead - self.ahead_ms / 1000)
            if self._hush.is_set():
                self._hush.clear()
                if not self._drop():
                    return
                start, written_s = self.clock(), 0.0
            self.fill.measured(max(0, self._buffer_frames - self._free_frames()) / self.rate, self.clock())
            self.fill.taking(period / (2 * self.rate))   # before the read hands any of it out
            pcm = self.read(period)
            if pcm or self.idle_pause_s is None:
                idle_since = None
            elif idle_since is None:
                idle_since = self.clock()
            elif self.clock() - max(idle_since, self._woken_at) >= self.idle_pause_s:
                self._resume.clear()
                pcm = self.read(period)    # queued just now? (a later push sets _resume)
                if not pcm:
                    self._sleep_until_woken()
                    start, written_s, idle_since = self.clock(), 0.0, None
                    continue
            self.fill.taking(len(pcm) / (2 * self.rate))   # of the reply: the padding is no reply
            if not self._write(pcm, period):
                return
            self.fill.wrote(period / (2 * self.rate), self.last_write)
            written_s += period / (2 * self.rate)   # what was asked for is written (padded, or silence)
            period = full if pcm else quiet
            self.ahead_s = max(0.0, written_s - (self.last_write - start))
            if pcm and self.first_write_after is not None:
                callback, self.first_write_after = self.first_write_after, None
                callback()

    def _drop(self) -> bool:
        """Abort the stream (what its buffer holds is dropped) and start it again."""
        # PyAudio's Stream has stop (which plays the buffer out) but not abort: its C module does.
        portaudio: Any = getattr(_pyaudio(), "_portaudio", None)
        handle = getattr(self._stream, "_stream", None)
        if not hasattr(portaudio, "abort_stream") or handle is None:
            return True        # the buffer plays out, as it would anyway
        self.hushes += 1
        try:
            portaudio.abort_stream(handle)
            portaudio.start_stream(handle)
        except OSError as exc:
            return self._lost("hush", exc)
        self.last_write = self.clock()
        self.fill.measured(0.0, self.last_write)
        return True

    def _lost(self, what: str, exc: OSError) -> bool:
        """The device failed mid-run (unplugged): the writer stops; keep_open reopens it."""
        self.errors += 1
        logger.error("speaker %s failed: %s", what, exc)
        self._running.clear()
        return False

    def _free_frames(self) -> int:
        """Frames the device's buffer can take now (all of it when the stream has just started)."""
        try:
            return int(self._stream.get_write_available())
        except (OSError, AttributeError):
            return self._buffer_frames

    def _write(self, pcm: bytes, period: int) -> bool:
        if len(pcm) < period:
            pcm += bytes(period - len(pcm))
        if self.channels == 2:
            pcm = _to_stereo(pcm)
        try:
            self._stream.write(pcm, exception_on_underflow=False)
        except OSError as exc:
            return self._lost("write", exc)
        self.last_write = self.clock()
        return True

    def _sleep_until_woken(self) -> None:
        """Stop the stream; start it again when audio is queued (or on close)."""
        self.paused = True
        self.pauses += 1
        try:
            self._stream.stop_stream()
            self.fill.measured(0.0, self.clock())
            self._resume.wait()
            self._hush.clear()      # a stopped stream has played out what it had
            if self._running.is_set():
                self._stream.start_stream()
                self._buffer_frames = max(self._buffer_frames, self._free_frames())
        except OSError as exc:
            logger.error("speaker pause/resume failed: %s", exc)
        self.paused = False
        self.last_write = self.clock()

    @property
    def alive(self) -> bool:
        return bool(self._thread and self._thread.is_alive())

    def close(self) -> None:
        self._running.clear()
        self._resume.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
            self._thread = None
        self._close_stream()


def _to_stereo(pcm: bytes) -> bytes:
    """Mono PCM16 -> the same on both channels."""
    out = bytearray(len(pcm) * 2)
    view, src = memoryview(out).cast("h"), memoryview(pcm).cast("h")
    view[0::2] = src
    view[1::2] = src
    return bytes(out)
