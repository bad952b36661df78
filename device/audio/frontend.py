"""Microphone front end: native-rate device audio -> aligned 20 ms frames at 24 kHz (what the
API takes) and 16 kHz (what webrtcvad takes)."""

from __future__ import annotations

import numpy as np

from .resample import StreamResampler, to_mono

API_RATE = 24000
VAD_RATE = 16000


class FrontEnd:
    def __init__(self, device_rate: int, channels: int, *, frame_ms: int = 20) -> None:
        if frame_ms not in (10, 20, 30):
            raise ValueError("webrtcvad frames are 10, 20 or 30 ms")
        self.channels = channels
        self.frame_ms = frame_ms
        self._to_api = StreamResampler(device_rate, API_RATE)
        self._to_vad = StreamResampler(device_rate, VAD_RATE)
        self._api = np.zeros(0, np.int16)
        self._vad = np.zeros(0, np.int16)
        self._n_api = API_RATE * frame_ms // 1000
        self._n_vad = VAD_RATE * frame_ms // 1000

    def feed(self, pcm: bytes) -> list[tuple[bytes, bytes]]:
        """Device bytes in; (24 kHz frame, 16 kHz frame) pairs out, for the same 20 ms."""
        mono = to_mono(pcm, self.channels)
        self._api = np.concatenate([self._api, self._to_api.process(mono)])
        self._vad = np.concatenate([self._vad, self._to_vad.process(mono)])
        count = min(len(self._api) // self._n_api, len(self._vad) // self._n_vad)
        out = [(self._api[i * self._n_api:(i + 1) * self._n_api].tobytes(),
                self._vad[i * self._n_vad:(i + 1) * self._n_vad].tobytes()) for i in range(count)]
        self._api = self._api[count * self._n_api:]
        self._vad = self._vad[count * self._n_vad:]
        return out
