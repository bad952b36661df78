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
long (few wake-ups) and it needs no sound card.
"""

from __future__ import annotations

from collections.abc import Callable

from .interfaces import Gap
from .sim import _Paced

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
            self.on_audio(pcm, Gap.REOPEN if self.periods == 1 else Gap.NONE)

    @property
    def alive(self) -> bool:
        return self._running

    def close(self) -> None:
        self._stop()
