"""What the device hears while its microphone is missing: digital silence, at the pace of a
real one (the app runs it from the moment the microphone fails until it is open again).

Without it nothing at all reached the pipeline, and that left things hanging:

* GPT-Live paces its output by the audio it is sent (its SDK's example keeps sending silence
  "so the assistant can finish replying"): with no microphone a reply stopped mid-word, and
  ``say`` was never answered.
* A turn the microphone cut off waited for the rest of it, so whenever the microphone came
  back (minutes later, maybe) the device answered that stale half-question. With silence the
  turn ends as if the person had stopped talking: the local VAD commits it, the server's VAD
  hears the silence it needs, push-to-talk commits on release, and it is answered now,
  through the speaker that still works.
* A talk-over on hold (device/audio/bargehold.py) is decided on microphone frames: it kept
  the reply silent until the microphone came back; now it is dismissed and the reply plays on.

In the turn modes with a VAD silence is not sent, so this costs no bandwidth; its periods are
long (few wake-ups) and it needs no sound card. :class:`StandIn` is what the app holds: it
starts and stops the silence as the microphone goes and comes back, and drops a period of the
real microphone that arrives while the silence stands in (the reader's last, posted as it
stopped: it would be read at the silence's rate).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from .interfaces import Gap
from .sim import _Paced

logger = logging.getLogger(__name__)

RATE = 16000          # what the pipeline's front end takes without resampling


class SilentMicrophone(_Paced):
    device_name = "no microphone (silence in its place)"

    def __init__(self, on_audio: Callable[[bytes, int], None], *, period_ms: int = 100) -> None:
        self.on_audio = on_audio
        self.rate = RATE
        self.channels = 1
        self.period_ms = period_ms
        self.speed = 1.0
        self.periods = 0

    def open(self) -> None:
        self._start("silent-mic")

    async def _run(self) -> None:
        pcm = bytes(self.rate * self.period_ms // 1000 * 2)
        async for _ in self._ticks():
            self.periods += 1
            try:
                self.on_audio(pcm, Gap.REOPEN if self.periods == 1 else Gap.NONE)
            except Exception:   # as for a real microphone's period: said, and the next one comes
                logger.exception("the audio pipeline failed on a period of the silence standing in "
                                 "for the microphone")

    @property
    def alive(self) -> bool:
        return self._running

    def close(self) -> None:
        self._stop()


class StandIn:
    """Silence in the microphone's place while it is missing; ``on_audio`` gets the periods of
    whichever is there, ``opened(rate, channels)`` is told when the silence starts."""

    def __init__(self, on_audio: Callable[[bytes, int], None], opened: Callable[[int, int], None]) -> None:
        self.on_audio = on_audio
        self.opened = opened
        self.silence: SilentMicrophone | None = None

    @property
    def active(self) -> bool:
        return self.silence is not None

    def missing(self) -> None:
        """The microphone failed, or is still missing (said again at each retry)."""
        if self.silence is None:
            self.silence = SilentMicrophone(self.on_audio)
            self.opened(self.silence.rate, self.silence.channels)
            self.silence.open()

    def back(self) -> None:
        """The microphone is open again (the caller tells the pipeline its rate)."""
        if self.silence is not None:
            self.silence.close()
            self.silence = None

    def real(self, pcm: bytes, gap: int) -> None:
        """A period of the real microphone."""
        if self.silence is None:
            self.on_audio(pcm, gap)
