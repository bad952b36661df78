"""Simulated twins of the microphone and the speaker: they simulate and they record.

:class:`SimMicrophone` delivers capture periods on the event loop at the pace of a real device
(``speed`` > 1 runs faster, for tests): silence, or speech queued with :meth:`say`. It can be
made to stall (:meth:`stall`) like a hung driver that stops calling back while looking open.
:class:`SimSpeaker` reads the playback buffer a period at a time at the pace of a real device
and keeps what it played (the last ``keep_s`` seconds), optionally also in a WAV file.
Both have the open/close/alive surface of :mod:`hardware.audio` (:mod:`hardware.interfaces`),
so the supervisor and the pipeline cannot tell them apart. Either can be made missing
(``present=False``, :meth:`unplug`) and plugged in again (:meth:`plug_in`): opening a missing
one raises the same :class:`~hardware.errors.AudioDeviceError` a missing sound card does.
"""

from __future__ import annotations

import asyncio
import time
import wave
from collections import deque
from collections.abc import AsyncIterator, Callable

import numpy as np

from .errors import AudioDeviceError


class _Paced:
    """A task that ticks once per period of real (or sped-up) time, like a sound card's clock."""

    _task: asyncio.Task[None] | None = None
    period_ms: int
    speed: float

    async def _ticks(self) -> AsyncIterator[int]:
        period_s = self.period_ms / 1000 / self.speed
        start, n = time.monotonic(), 0
        while True:
            n += 1
            await asyncio.sleep(max(0.0, start + n * period_s - time.monotonic()))
            yield n

    def _start(self, name: str) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name=name)

    async def _run(self) -> None:
        raise NotImplementedError

    @property
    def _running(self) -> bool:
        return self._task is not None and not self._task.done()

    def _stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    present: bool = True
    device_name: str

    def _check_present(self, kind: str) -> None:
        if not self.present:
            raise AudioDeviceError(f"no {kind} device named {self.device_name!r} (found: none)",
                                   fix=f"plug it in, or set [audio] {kind}_device; `pivoice devices` lists them")

    def plug_in(self) -> None:
        self.present = True

    def unplug(self) -> None:
        """Like pulling the USB plug: it stops, and cannot be opened until plugged in."""
        self.present = False
        self._stop()


class SimMicrophone(_Paced):
    device_name = "simulated microphone"

    def __init__(self, on_audio: Callable[[bytes, int], None], *, rate: int = 16000, period_ms: int = 50,
                 speed: float = 1.0, noise_dbfs: float | None = -70.0, seed: int = 7, present: bool = True) -> None:
        self.on_audio = on_audio
        self.present = present
        self.rate = rate
        self.channels = 1
        self.period_ms = period_ms
        self.speed = speed
        self._queue: deque[bytes] = deque()
        self._stalled = False
        self._drained = asyncio.Event()
        self._drained.set()
        self._rng = np.random.default_rng(seed)
        self._noise = None if noise_dbfs is None else 32768 * 10 ** (noise_dbfs / 20)
        self.periods = 0
        self.spoken_bytes = 0
        self.requested_periods: list[int] = []

    # ------------------------------------------------------------------ simulate
    def say(self, pcm: bytes) -> None:
        """Queue mono PCM16 at ``self.rate`` to be 'heard' next (after what is queued)."""
        period = self.rate * self.period_ms // 1000 * 2
        for i in range(0, len(pcm), period):
            chunk = pcm[i:i + period]
            self._queue.append(chunk + bytes(period - len(chunk)))
        self._drained.clear()

    async def wait_said(self) -> None:
        """Until everything queued with :meth:`say` has been delivered."""
        await self._drained.wait()

    def unplug(self) -> None:
        """What is still to be said goes unheard: the person talks on, into no microphone."""
        super().unplug()
        self._queue.clear()
        self._drained.set()

    def stall(self, stalled: bool = True) -> None:
        self._stalled = stalled

    def set_period(self, period_ms: int) -> None:
        """The twin keeps its own period (tests cut what it hears in whole periods); it records
        what it was asked for."""
        self.requested_periods.append(period_ms)

    # ------------------------------------------------------- the device surface
    def open(self) -> None:
        self._check_present("input")
        self._start("sim-mic")

    async def _run(self) -> None:
        samples = self.rate * self.period_ms // 1000
        async for _ in self._ticks():
            if self._stalled:
                continue
            if self._queue:
                pcm = self._queue.popleft()
                self.spoken_bytes += len(pcm)
                if not self._queue:
                    self._drained.set()
            elif self._noise is not None:
                pcm = (self._rng.standard_normal(samples) * self._noise).astype("<i2").tobytes()
            else:
                pcm = bytes(samples * 2)
            self.periods += 1
            self.on_audio(pcm, False)

    @property
    def alive(self) -> bool:
        return self._running

    def close(self) -> None:
        self._stop()


class SimSpeaker(_Paced):
    device_name = "simulated speaker"

    def __init__(self, read: Callable[[int], bytes], *, rate: int = 24000, period_ms: int = 20, speed: float = 1.0,
                 keep_s: float = 120.0, wav_path: str | None = None, present: bool = True) -> None:
        self.read = read
        self.present = present
        self.rate = rate
        self.channels = 1
        self.period_ms = period_ms
        self.speed = speed
        self.played: deque[bytes] = deque(maxlen=max(1, int(keep_s * 1000 / period_ms)))
        self.wav_path = wav_path
        self._wav: wave.Wave_write | None = None
        self.first_write_after: Callable[[], None] | None = None
        self.last_write = 0.0
        self.lead_s = self.unheard_s = 0.0        # plays what it reads at once
        self.ahead_s = 0.0
        self.errors = 0
        self.stalled = False

    def open(self) -> None:
        self._check_present("output")
        if self.wav_path:
            self._wav = wave.open(self.wav_path, "wb")  # noqa: SIM115 - open until close(), like a device
            self._wav.setnchannels(1)
            self._wav.setsampwidth(2)
            self._wav.setframerate(self.rate)
        self._start("sim-speaker")

    async def _run(self) -> None:
        nbytes = self.rate * self.period_ms // 1000 * 2
        async for _ in self._ticks():
            if self.stalled:
                continue
            pcm = self.read(nbytes)
            if pcm:
                pcm += bytes(nbytes - len(pcm))
                self.played.append(pcm)
                if self._wav is not None:
                    self._wav.writeframes(pcm)
            self.last_write = time.monotonic()
            if pcm and self.first_write_after is not None:
                callback, self.first_write_after = self.first_write_after, None
                callback()

    def hush(self) -> None:
        """Nothing to drop: it plays what it reads at once."""

    def played_pcm(self) -> bytes:
        return b"".join(self.played)

    @property
    def alive(self) -> bool:
        return self._running

    def close(self) -> None:
        self._stop()
        if self._wav is not None:
            self._wav.close()
            self._wav = None
