"""Sample-rate conversion and channel downmix, streaming, with soxr.

soxr keeps its filter state between chunks, so chunk boundaries make no clicks (field notes
item 9: open the device at a rate it supports and convert explicitly; never stream 16 kHz audio
into a 24 kHz session).
"""

from __future__ import annotations

import numpy as np
import soxr


def to_mono(pcm: bytes, channels: int) -> np.ndarray:
    """Interleaved PCM16 -> mono int16 (channel average; the 2-mic HAT only gives stereo)."""
    samples = np.frombuffer(pcm, dtype="<i2")
    if channels == 1:
        return samples
    frames = samples[: len(samples) - len(samples) % channels].reshape(-1, channels)
    mono: np.ndarray = frames.mean(axis=1, dtype=np.float32).astype(np.int16)
    return mono


class StreamResampler:
    """int16 mono in, int16 mono out; output length follows the rate ratio over time."""

    def __init__(self, in_rate: int, out_rate: int, *, quality: str = "HQ") -> None:
        self.in_rate, self.out_rate = in_rate, out_rate
        self._stream = None if in_rate == out_rate else soxr.ResampleStream(
            in_rate, out_rate, 1, dtype="int16", quality=quality)

    def process(self, samples: np.ndarray, *, last: bool = False) -> np.ndarray:
        if self._stream is None:
            return samples
        out: np.ndarray = self._stream.resample_chunk(samples, last=last)
        return out

    def flush(self) -> np.ndarray:
        """The samples still inside the filter (the end of a stream), then start afresh."""
        if self._stream is None:
            return np.zeros(0, np.int16)
        tail: np.ndarray = self._stream.resample_chunk(np.zeros(0, np.int16), last=True)
        self._stream.clear()
        return tail

    def reset(self) -> None:
        """Forget what is inside the filter (the stream was cut off)."""
        if self._stream is not None:
            self._stream.clear()
