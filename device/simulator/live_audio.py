"""Audio in the Live simulator's session format, to and from the 24 kHz PCM16 it works in.

GPT-Live uses one format both ways (reference section 5): PCM16 at 24 or 16 kHz, or G.711
mu-law / A-law at 8 kHz. The G.711 codecs are the ITU-T segment rules, written with numpy.
"""

from __future__ import annotations

import numpy as np
import soxr

WORK_RATE_HZ = 24000


def _resample(samples: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    if rate_in == rate_out or not len(samples):
        return samples.astype(np.float32)
    out: np.ndarray = soxr.resample(samples.astype(np.float32), rate_in, rate_out)
    return out


def _pcm16(samples: np.ndarray) -> bytes:
    pcm: bytes = np.clip(samples, -32768, 32767).astype("<i2").tobytes()
    return pcm


def ulaw_decode(data: bytes) -> np.ndarray:
    u = ~np.frombuffer(data, dtype=np.uint8).astype(np.int32) & 0xFF
    magnitude = (((u & 0x0F) << 3) + 0x84) << ((u >> 4) & 0x07)
    return np.where(u & 0x80, 0x84 - magnitude, magnitude - 0x84).astype(np.int16)


def ulaw_encode(samples: np.ndarray) -> bytes:
    """The G.711 reference rule: 14-bit magnitude, bias 33, eight segments."""
    x = samples.astype(np.int32) >> 2
    mask = np.where(x < 0, 0x7F, 0xFF)
    magnitude = np.minimum(np.abs(x), 8159) + 0x21
    segment = np.searchsorted(_ULAW_SEGMENT_ENDS, magnitude)
    value = np.where(segment >= 8, 0x7F, (np.minimum(segment, 7) << 4) | ((magnitude >> (segment + 1)) & 0x0F))
    return (value ^ mask).astype(np.uint8).tobytes()


_ULAW_SEGMENT_ENDS = np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF])
_ALAW_SEGMENT_ENDS = np.array([0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF])


def alaw_decode(data: bytes) -> np.ndarray:
    a = np.frombuffer(data, dtype=np.uint8).astype(np.int32) ^ 0x55
    exponent = (a >> 4) & 0x07
    mantissa = a & 0x0F
    magnitude = np.where(exponent == 0, (mantissa << 4) + 8, ((mantissa << 4) + 0x108) << np.maximum(exponent - 1, 0))
    return np.where(a & 0x80, magnitude, -magnitude).astype(np.int16)


def alaw_encode(samples: np.ndarray) -> bytes:
    """The G.711 reference rule: 13-bit magnitude, eight segments, even bits inverted."""
    x = samples.astype(np.int32) >> 3
    mask = np.where(x >= 0, 0xD5, 0x55)
    magnitude = np.where(x >= 0, x, -x - 1)
    segment = np.searchsorted(_ALAW_SEGMENT_ENDS, magnitude)
    shift = np.where(segment < 2, 1, segment)
    value = np.where(segment >= 8, 0x7F, (np.minimum(segment, 7) << 4) | ((magnitude >> shift) & 0x0F))
    return (value ^ mask).astype(np.uint8).tobytes()


def to_work(data: bytes, kind: str, rate: int) -> bytes:
    """Session-format audio -> 24 kHz PCM16."""
    if kind == "audio/pcmu":
        samples = ulaw_decode(data)
    elif kind == "audio/pcma":
        samples = alaw_decode(data)
    else:
        samples = np.frombuffer(data[: len(data) - len(data) % 2], dtype="<i2")
    return _pcm16(_resample(samples, rate, WORK_RATE_HZ))


def from_work(pcm: bytes, kind: str, rate: int) -> bytes:
    """24 kHz PCM16 -> session-format audio."""
    samples = _resample(np.frombuffer(pcm, dtype="<i2"), WORK_RATE_HZ, rate)
    samples = np.clip(samples, -32768, 32767)
    if kind == "audio/pcmu":
        return ulaw_encode(samples)
    if kind == "audio/pcma":
        return alaw_encode(samples)
    return _pcm16(samples)
