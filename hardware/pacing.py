"""Is a capture source clocked? A sound card delivers audio at its rate, never faster than real
time for long; some ALSA devices have no clock at all and deliver as fast as they are read:
ALSA's ``null`` plugin (as the default PCM, or under a ``plug`` as an asound.conf that silences
a missing card has it), the file plugin. Read flat out, such a source floods the event loop with
audio (measured here with ``null`` as ALSA's default: 2.5 GB resident and 150 % of a core after
12 s, and the Realtime session never opened). :class:`Pacer` tells the two apart and paces the
second to real time.

The rule, per stream, its clock from the moment the stream was opened (a reopen starts it
again): the audio read from it may come to at most ``burst_s`` plus ``slack`` times the time
since. A card cannot deliver more than it captured since it was opened, however long the
reader was held up before reading it (the sound server buffers meanwhile), and its crystal is
off by < 0.1 %; so a source past that bound has no clock. From then on the reader waits before
each read until the audio it has read since is due in real time, so the source acts as a
microphone of its rate.

Pure: the times are arguments.
"""

from __future__ import annotations

from dataclasses import dataclass

#: how far a clocked source's audio may run ahead of the wall clock (seconds)
BURST_S = 3.0


@dataclass
class Pacer:
    rate: int
    start: float
    burst_s: float = BURST_S
    slack: float = 1.25
    audio_s: float = 0.0
    #: when the source was found to have no clock (None: clocked so far), and its audio then
    unclocked_at: float | None = None
    _audio_then: float = 0.0

    @property
    def unclocked(self) -> bool:
        return self.unclocked_at is not None

    def delivered(self, frames: int, now: float) -> float:
        """``frames`` were just read at ``now``: when the next read may start (``now`` or
        earlier: at once)."""
        before, self.audio_s = self.audio_s, self.audio_s + frames / self.rate
        if self.unclocked_at is None:
            if self.audio_s <= self.burst_s + self.slack * (now - self.start):
                return now
            self.unclocked_at, self._audio_then = now, before   # this read is the first paced
        return self.unclocked_at + (self.audio_s - self._audio_then)
