"""Integer-factor decimation with a causal FIR: every input sample is in the output at once.

The microphone's 48 kHz (or 32, 96 kHz) goes to the 16 kHz front end through this instead of
soxr. soxr converts in blocks and holds back part of each period (up to 19 ms of a 50 ms period
at its HQ setting, 12 ms at LQ); the front end cuts 20 ms frames, so a period's last frame often
waited a whole period for a few samples. A person talking over the device was heard that much
later (README "Audio": barge-in). A causal filter has no look-ahead: a period's audio is all
there when the period is. Its cost is the filter's delay (``taps / 2`` input samples, 0.7 ms at
48 kHz), on the microphone only (soxr, which converts the echo canceller's reference, removes
its own); the canceller finds the delay between the two anyway.

Not for other ratios (44.1 kHz): those stay with soxr (:class:`resample.StreamResampler`).
"""

from __future__ import annotations

import numpy as np


def lowpass(factor: int, taps_per_phase: int = 24, *, beta: float = 9.0, passband: float = 0.85) -> np.ndarray:
    """A Kaiser-windowed sinc for 1/``factor`` of the input's rate: cut-off at ``passband``
    of the output's Nyquist frequency (7.2 kHz for 16 kHz out), unity gain at DC."""
    n = factor * taps_per_phase
    t = np.arange(n) - (n - 1) / 2
    cutoff = passband / factor                    # of the input's Nyquist frequency
    h = cutoff * np.sinc(cutoff * t) * np.kaiser(n, beta)
    taps: np.ndarray = (h / h.sum()).astype(np.float32)
    return taps


class Decimator:
    """int16 mono in, int16 mono out at ``1/factor`` of the rate; streaming, no look-ahead."""

    def __init__(self, factor: int) -> None:
        if factor < 1:
            raise ValueError("the factor is a whole number of at least 1")
        self.factor = factor
        self._h = lowpass(factor)[::-1].copy() if factor > 1 else np.ones(1, np.float32)
        self._history = np.zeros(len(self._h) - 1, np.float32)
        self._skip = 0    # input samples before the next output (the phase across calls)

    def process(self, samples: np.ndarray) -> np.ndarray:
        if self.factor == 1:
            return samples
        x = np.concatenate([self._history, samples.astype(np.float32)])
        taps = len(self._h)
        # Output k is the filter over the input ending at sample (skip + k * factor) of this call
        # (every input sample's output, then every factor-th: in C, cheaper than strided windows).
        y = np.correlate(x, self._h, "valid")[self._skip::self.factor]
        consumed = self._skip + len(y) * self.factor
        self._skip = consumed - len(samples)
        self._history = x[len(x) - (taps - 1):]
        out: np.ndarray = np.clip(np.rint(y), -32768, 32767).astype(np.int16)
        return out
