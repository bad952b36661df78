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
long (few wake-ups) and it needs no sound card: it is the simulated microphone
(hardware/sim.py) with no noise and nothing to say, paced like a real one. :class:`StandIn` is
what the app holds: it starts and stops the silence as the microphone goes and comes back, and
drops a period of the real microphone that arrives while the silence stands in (the reader's
last, posted as it stopped: it would be read at the silence's rate).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from .sim import SimMicrophone

logger = logging.getLogger(__name__)

RATE = 16000          # what the pipeline's front end takes without resampling
PERIOD_MS = 100


class StandIn:
    """Silence in the microphone's place while it is missing; ``on_audio`` gets the periods of
    whichever is there, ``opened(rate, channels, True)`` is told when the silence starts."""

    def __init__(self, on_audio: Callable[[bytes, int], None], opened: Callable[[int, int, bool], None]) -> None:
        self.on_audio = on_audio
        self.opened = opened
        self.silence: SimMicrophone | None = None

    @property
    def active(self) -> bool:
        return self.silence is not None

    def missing(self) -> None:
        """The microphone failed, or is still missing (said again at each retry)."""
        if self.silence is None:
            self.silence = SimMicrophone(self._silent, rate=RATE, period_ms=PERIOD_MS, noise_dbfs=None)
            self.opened(self.silence.rate, self.silence.channels, True)
            self.silence.open()

    def back(self) -> None:
        """The microphone is open again (the caller tells the pipeline its rate)."""
        if self.silence is not None:
            self.silence.close()
            self.silence = None

    def _silent(self, pcm: bytes, gap: int) -> None:
        try:
            self.on_audio(pcm, gap)
        except Exception:   # as for a real microphone's period: said, and the next one comes
            logger.exception("the audio pipeline failed on a period of the silence standing in for the microphone")

    def real(self, pcm: bytes, gap: int) -> None:
        """A period of the real microphone."""
        if self.silence is None:
            self.on_audio(pcm, gap)
