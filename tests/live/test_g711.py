"""The Live simulator's G.711 codecs against the reference rule (values as ITU-T G.711 / Sun's
g711.c give them; checked bit for bit against Python 3.11's audioop over all 65,536 inputs)."""

import numpy as np

from device.simulator import live_audio as la

SAMPLES = np.array([0, -1, 32767, -32768, 1000, -1000, 5, -5, 128, 4000, -4000, 200], dtype=np.int16)


def test_mu_law_encodes_and_decodes_as_the_reference():
    assert la.ulaw_encode(SAMPLES).hex() == "ff7e8000ce4efe7eefaf2feb"
    assert la.ulaw_decode(bytes.fromhex("ff7f80004e")).tolist() == [0, 0, 32124, -32124, -988]


def test_a_law_encodes_and_decodes_as_the_reference():
    assert la.alaw_encode(SAMPLES).hex() == "d555aa2afa7ad555dd9a1ad9"
    assert la.alaw_decode(bytes.fromhex("d555aa2a7a")).tolist() == [8, -8, 32256, -32256, -1008]


def test_session_format_round_trip_keeps_the_signal():
    tone = (np.sin(np.arange(2400) * 2 * np.pi * 440 / 24000) * 12000).astype("<i2").tobytes()
    for kind, rate in (("audio/pcm", 16000), ("audio/pcmu", 8000), ("audio/pcma", 8000)):
        wire = la.from_work(tone, kind, rate)
        assert len(wire) == 100 * rate // 1000 * (2 if kind == "audio/pcm" else 1)
        back = np.frombuffer(la.to_work(wire, kind, rate), dtype="<i2").astype(float)
        original = np.frombuffer(tone, dtype="<i2").astype(float)
        middle = slice(240, 2160)  # away from the resampler's edges
        error = np.abs(back[middle] - original[middle]).max()
        assert error < 1500, (kind, error)
