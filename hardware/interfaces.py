"""The small interfaces the device sees of its hardware; each has a real and a simulated twin.

==============  ==================================  =====================================
interface       real                                simulated (simulates and records)
==============  ==================================  =====================================
Microphone      :class:`hardware.audio.Microphone`  :class:`hardware.sim.SimMicrophone`
Speaker         :class:`hardware.audio.Speaker`     :class:`hardware.sim.SimSpeaker`
Button          :class:`hardware.buttons.PushButton` (gpiozero; mock pins in tests)
Leds            :mod:`hardware.leds` backends       :class:`hardware.leds.SimLeds`
==============  ==================================  =====================================

Audio devices deliver and take mono or interleaved PCM16 at ``rate`` (known once open).
A microphone calls ``on_audio(pcm, gap)`` (a :class:`Gap`) on the event loop (through
:class:`hardware.bridge.LoopBridge`); a speaker calls ``read(nbytes)`` for mono PCM16 at its
own ``rate`` (b"" when there is nothing to play), on a thread of its own or on the loop.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import IntEnum
from typing import Protocol, runtime_checkable

from .gestures import GestureEvent
from .leds import Leds

__all__ = ["AudioCallback", "AudioDevice", "AudioSource", "Button", "Gap", "Leds", "Microphone", "Speaker"]


class Gap(IntEnum):
    """What came before a capture period (the callback's second argument; true for a gap)."""

    NONE = 0
    OVERFLOW = 1    # the sound card's buffer overflowed: audio was lost (counted as an overflow)
    REOPEN = 2      # the stream was reopened at another period: a few ms may be missing


#: ``(pcm, gap)``: one capture period, on the event loop; ``gap`` a :class:`Gap` (or a bool).
AudioCallback = Callable[[bytes, int], None]
#: ``read(nbytes) -> pcm``: mono PCM16 at the speaker's rate, b"" for silence.
AudioSource = Callable[[int], bytes]


@runtime_checkable
class AudioDevice(Protocol):
    device_name: str
    rate: int          # Hz, valid once open
    channels: int      # valid once open

    def open(self) -> None:
        """Open it; raises :class:`hardware.errors.AudioDeviceError` naming the cause and the fix."""

    def close(self) -> None: ...

    @property
    def alive(self) -> bool:
        """Open and moving (a device that was unplugged is not)."""


class Microphone(AudioDevice, Protocol):
    on_audio: AudioCallback

    def set_period(self, period_ms: int) -> None:
        """Hand over ``period_ms`` of audio at a time from now on (any thread)."""


class Speaker(AudioDevice, Protocol):
    read: AudioSource
    #: monotonic time of the last period handed to the device (the watchdog reads it)
    last_write: float

    @property
    def lead_s(self) -> float:
        """Seconds until what the next read hands over is heard: what the device's buffer holds now."""

    @property
    def unheard_s(self) -> float:
        """Seconds of what it was handed that nobody has heard yet (the buffer, and what it is writing)."""

    def hush(self) -> None:
        """Drop what the device's buffer still holds (a barge-in): silent now, not once that
        has played out (any thread)."""


class Button(Protocol):
    on_gesture: Callable[[GestureEvent], None]

    async def run(self) -> None:
        """Deliver gestures until cancelled; release the pin on the way out."""

    def close(self) -> None: ...
