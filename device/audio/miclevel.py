"""How loud the microphone is, for ``pivoice status``: what an admin over SSH asks first when the
device "does not hear", while the daemon holds the microphone (``pivoice mic-test`` needs it
free). The loudest and the quietest capture period (RMS, dBFS) of the last 10-20 s, and how
long the microphone has delivered nothing but zeros.

Digital silence, every sample 0, is not a quiet room: a converter always hears its own noise
(-90 to -60 dBFS). For a minute on end it is a capture switch or volume at 0 (alsamixer), the
wrong channel of a card with several, or a microphone with a noise gate of its own in a quiet
room. The first such minute is logged (a warning, with those causes); the status shows it
while it lasts.

Pure: the times are arguments; :meth:`MicLevel.tap` is where the microphone's periods pass.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

WINDOW_S = 10.0
#: digital silence this long is logged (once a run of the daemon)
SILENT_WARN_S = 60.0
SILENT_CAUSES = ("a capture switch or volume at 0 (alsamixer, or `amixer` on the card)? the wrong "
                 "channel of a card with several? a microphone with a noise gate of its own, in a quiet room?")


@dataclass
class _Window:
    start: float
    loudest: float = -math.inf
    quietest: float = math.inf
    periods: int = 0

    def add(self, db: float) -> None:
        self.loudest, self.quietest, self.periods = max(self.loudest, db), min(self.quietest, db), self.periods + 1


@dataclass
class MicLevel:
    window_s: float = WINDOW_S
    silent_warn_s: float = SILENT_WARN_S
    #: when the current run of all-zero periods began (None: the last period had a signal)
    silent_since: float | None = None
    warned: bool = False
    _now: _Window | None = None
    _before: _Window | None = field(default=None, repr=False)

    def feed(self, pcm: bytes, now: float) -> None:
        """One capture period of the real microphone (PCM16, any channels) at ``now``."""
        samples = np.frombuffer(pcm, "<i2")
        if not samples.size:
            return
        wide = samples.astype(np.float32)
        energy = float(np.dot(wide, wide)) / samples.size
        if self._now is None or now - self._now.start >= self.window_s:
            recent = self._now is not None and now - self._now.start < 2 * self.window_s
            self._before, self._now = (self._now if recent else None), _Window(now)
        self._now.add(10 * math.log10(energy / 32768.0 ** 2) if energy else -math.inf)
        if energy:
            self.silent_since = None
        elif self.silent_since is None:
            self.silent_since = now
        elif not self.warned and now - self.silent_since >= self.silent_warn_s:
            self.warned = True
            logger.warning("the microphone has delivered only digital silence (every sample 0) for %.0f s: nothing "
                           "reaches it. %s `pivoice status` shows its level", now - self.silent_since, SILENT_CAUSES)

    def tap(self, on_audio: Callable[[bytes, int], None], clock: Callable[[], float] = time.monotonic
            ) -> Callable[[bytes, int], None]:
        """``on_audio`` with this meter reading each period on its way."""
        def heard(pcm: bytes, gap: int) -> None:
            self.feed(pcm, clock())
            on_audio(pcm, gap)
        return heard

    def status(self, now: float) -> dict[str, Any]:
        """The last 10-20 s: ``periods`` (0: nothing from the microphone), the loudest and the
        quietest period in dBFS (None: digital silence), and ``zeros_for_s``."""
        windows = [w for w in (self._before, self._now) if w is not None and now - w.start < 2 * self.window_s]
        if not windows:
            return {"periods": 0, "over_s": 0.0, "loudest_dbfs": None, "quietest_dbfs": None, "zeros_for_s": 0.0}
        loudest, quietest = max(w.loudest for w in windows), min(w.quietest for w in windows)
        return {"periods": sum(w.periods for w in windows), "over_s": round(now - windows[0].start, 1),
                "loudest_dbfs": round(loudest, 1) if loudest > -math.inf else None,
                "quietest_dbfs": round(quietest, 1) if quietest > -math.inf else None,
                "zeros_for_s": round(now - self.silent_since, 1) if self.silent_since is not None else 0.0}


def describe(level: dict[str, Any]) -> str:
    """The ``mic level`` line of ``pivoice status``."""
    if not level.get("periods"):
        return "nothing from the microphone in the last 20 s"
    zeros = level.get("zeros_for_s") or 0.0
    if zeros >= SILENT_WARN_S:
        return f"digital silence (every sample 0) for {zeros:.0f} s: nothing reaches the microphone. {SILENT_CAUSES}"
    if level["loudest_dbfs"] is None:
        return f"digital silence (every sample 0) for {zeros:.0f} s"
    quietest = level["quietest_dbfs"]
    text = (f"loudest {level['loudest_dbfs']:.0f} dBFS, quietest "
            f"{'digital silence' if quietest is None else f'{quietest:.0f} dBFS'} (last {level['over_s']:.0f} s)")
    return text + (f"; digital silence for the last {zeros:.0f} s" if zeros else "")
