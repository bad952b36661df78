"""How loud the microphone is, for ``pivoice status``: what an admin over SSH asks first when the
device "does not hear", while the daemon holds the microphone (``pivoice mic-test`` needs it
free). The loudest and the quietest capture period (RMS, dBFS) of the last 10-20 s, and how
long the microphone has delivered no signal. A period's RMS is over the whole period (20-150 ms
as the pipeline picks it), so a click reads lower in a long period than in a short one.

No signal is every sample within 3 of 0, the rule of ``pivoice mic-test``: a converter always
hears its own noise (-90 to -60 dBFS, never that flat). For a minute on end it is a capture
switch or volume at 0 (alsamixer), the wrong channel of a card with several, or a microphone
with a noise gate of its own in a quiet room. The first such minute of a run is logged (a
warning, with those causes); the status shows it while it lasts. Only delivered time counts:
a gap in delivery (an overflow, a reopen, the microphone missing) starts the count again.

Pure: the times are arguments; :meth:`MicLevel.tap` is where the microphone's periods pass.
This module imports numpy only to measure: ``pivoice status`` runs on the standard library.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger(__name__)

WINDOW_S = 10.0
#: no signal this long is logged (once a run of the daemon) and gets its causes on the status
SILENT_WARN_S = 60.0
#: every sample within this of 0 is no signal (device/diag/audio.py: mic-test's "no signal")
NO_SIGNAL_PEAK = 4
#: a pause in delivery longer than this is a gap: the time of no signal counts again from 0
GAP_S = 1.0
#: what device.audio.vad.level_db gives digital silence (RMS floored at 1e-9)
SILENCE_DB = -180.0
SILENT_CAUSES = ("A capture switch or volume at 0 (alsamixer, or `amixer` on the card)? The wrong channel of a "
                 "card with several? A microphone with a noise gate of its own, in a quiet room?")


@dataclass
class _Window:
    start: float
    loudest: float = SILENCE_DB
    quietest: float = math.inf
    periods: int = 0

    def add(self, db: float) -> None:
        self.loudest, self.quietest, self.periods = max(self.loudest, db), min(self.quietest, db), self.periods + 1


@dataclass
class MicLevel:
    window_s: float = WINDOW_S
    silent_warn_s: float = SILENT_WARN_S
    #: when the current run of periods with no signal began (None: the last one had a signal)
    silent_since: float | None = None
    last_at: float | None = None
    warned: bool = False
    _now: _Window | None = None
    _before: _Window | None = field(default=None, repr=False)

    def feed(self, pcm: bytes, now: float, gap: bool = False) -> None:
        """One capture period of the real microphone (PCM16, any channels) at ``now``; ``gap``:
        audio before it was lost (an overflow, a reopen)."""
        import numpy as np  # here, not at the top: see the module's docstring

        from .vad import level_db

        samples = np.frombuffer(pcm, "<i2", count=len(pcm) // 2)
        if not samples.size:
            return
        if gap or self.last_at is None or now - self.last_at > GAP_S:
            self.silent_since = None
        self.last_at = now
        if self._now is None or now - self._now.start >= self.window_s:
            self._before, self._now = self._now, _Window(now)
        self._now.add(level_db(samples.data))
        if int(samples.max()) >= NO_SIGNAL_PEAK or int(samples.min()) <= -NO_SIGNAL_PEAK:
            self.silent_since = None
        elif self.silent_since is None:
            self.silent_since = now
        elif not self.warned and now - self.silent_since >= self.silent_warn_s:
            self.warned = True
            logger.warning("the microphone has delivered no signal (every sample within %d of 0) for %.0f s: "
                           "nothing reaches it. %s `pivoice status` shows its level", NO_SIGNAL_PEAK - 1,
                           now - self.silent_since, SILENT_CAUSES)

    def tap(self, on_audio: Callable[[bytes, int], None], clock: Callable[[], float] = time.monotonic
            ) -> Callable[[bytes, int], None]:
        """``on_audio`` with this meter reading each period after it (the audio goes first)."""
        def heard(pcm: bytes, gap: int) -> None:
            on_audio(pcm, gap)
            self.feed(pcm, clock(), bool(gap))
        return heard

    def status(self, now: float) -> dict[str, Any]:
        """The last 10-20 s: ``periods`` (0: nothing from the microphone), the loudest and the
        quietest period in dBFS (None: digital silence), ``no_signal_for_s``, and how long ago
        the last period came (``last_s_ago``, None: never)."""
        windows = [w for w in (self._before, self._now) if w is not None and now - w.start < 2 * self.window_s]
        last = round(now - self.last_at, 1) if self.last_at is not None else None
        if not windows:
            return {"periods": 0, "over_s": 0.0, "loudest_dbfs": None, "quietest_dbfs": None, "no_signal_for_s": 0.0,
                    "last_s_ago": last}
        loudest, quietest = max(w.loudest for w in windows), min(w.quietest for w in windows)
        return {"periods": sum(w.periods for w in windows), "over_s": round(now - windows[0].start, 1),
                "loudest_dbfs": round(loudest, 1) if loudest > SILENCE_DB else None,
                "quietest_dbfs": round(quietest, 1) if quietest > SILENCE_DB else None,
                "no_signal_for_s": round(now - self.silent_since, 1) if self.silent_since is not None else 0.0,
                "last_s_ago": last}


def _db(value: float | None) -> str:
    return "digital silence" if value is None else f"{int(round(value)) or 0} dBFS"


def describe(level: dict[str, Any]) -> str:
    """The ``mic level`` line of ``pivoice status``."""
    last = level.get("last_s_ago")
    if not level.get("periods"):
        return "nothing from the microphone yet" if last is None else f"nothing from the microphone for {last:.0f} s"
    quiet = level.get("no_signal_for_s") or 0.0
    if quiet >= SILENT_WARN_S:
        text = f"no signal for {quiet:.0f} s (every sample within {NO_SIGNAL_PEAK - 1} of 0): nothing reaches the " \
               f"microphone. {SILENT_CAUSES}"
    else:
        text = (f"loudest {_db(level['loudest_dbfs'])}, quietest {_db(level['quietest_dbfs'])} "
                f"(last {max(1, round(level['over_s']))} s)")
        text += f"; no signal for the last {quiet:.0f} s" if quiet >= 1 else ""
    return text + (f"; the last period came {last:.0f} s ago" if last is not None and last >= 2 else "")
