"""Echo cancellation on real speech: flite's voice as the device's reply, its echo delayed and
attenuated through a small room, a real person (pocketsphinx-testdata) talking over it and
after it. The echo must be gone for webrtcvad; the person must still be heard."""

from __future__ import annotations

import shutil
import subprocess
import wave

import numpy as np
import pytest
import webrtcvad

from device.audio import aec

from .helpers import clip16k

RATE, N = 16000, 160
REPLY = ("Sure. The weather tomorrow looks bright and mild, with a light breeze from the west "
         "and a small chance of rain in the late afternoon, so take a jacket just in case.")
needs_flite = pytest.mark.skipif(shutil.which("flite") is None, reason="flite is not installed (install.sh --dev)")
needs_speex = pytest.mark.skipif(not aec.available("speex"), reason="libspeexdsp1 is not installed")


def flite(tmp_path, text: str, voice: str = "slt") -> np.ndarray:
    out = tmp_path / f"{voice}.wav"
    subprocess.run(["flite", "-voice", voice, "-t", text, "-o", str(out)], check=True)
    with wave.open(str(out)) as w:
        return np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float32)


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x.astype(np.float64) ** 2)))


def echo_of(far: np.ndarray, delay_ms: int, gain_db: float) -> np.ndarray:
    """Direct path and two reflections, attenuated: a speaker beside the microphone."""
    y = np.zeros(len(far), np.float32)
    for extra_ms, rel in ((0, 1.0), (9, 0.3), (21, 0.12)):
        d = (delay_ms + extra_ms) * RATE // 1000
        y[d:] += rel * far[: len(far) - d]
    return y * 10 ** (gain_db / 20)


def i16(x: np.ndarray) -> np.ndarray:
    return np.clip(x, -32768, 32767).astype(np.int16)


def frame_rms(x: np.ndarray) -> np.ndarray:
    return np.sqrt((x[: len(x) // 320 * 320].reshape(-1, 320).astype(np.float64) ** 2).mean(axis=1))


def vad_hits(x: np.ndarray) -> np.ndarray:
    vad = webrtcvad.Vad(2)
    return np.array([vad.is_speech(x[i * 320:(i + 1) * 320].tobytes(), RATE) for i in range(len(x) // 320)])


def cancel(canceller, far: np.ndarray, mic: np.ndarray) -> np.ndarray:
    """Frame by frame as the device runs: reference handed over, then the mic frame captured."""
    out = np.zeros_like(mic)
    for i in range(len(mic) // N):
        s = slice(i * N, (i + 1) * N)
        canceller.reference(far[s], at=i * 0.01)
        out[s] = canceller.process(mic[s], at=(i + 1) * 0.01)
    return out


@pytest.fixture
def scene(tmp_path):
    """(far, mic, echo-only mask, person-alone mask, person-over-reply mask) at -6 dB / 40 ms."""
    reply = flite(tmp_path, REPLY)
    person = np.frombuffer(clip16k("goforward.raw"), "<i2").astype(np.float32)
    total = len(reply) + len(person) + 2 * RATE
    far = np.zeros(total, np.float32)
    far[RATE // 2:RATE // 2 + len(reply)] = reply
    echo = echo_of(far, 40, -6.0)
    near = np.zeros(total, np.float32)
    person_at_echo_level = person * (rms(echo[echo != 0]) / rms(person[np.abs(person) > 300]))
    over = RATE // 2 + len(reply) * 2 // 3
    near[over:over + len(person)] = person_at_echo_level       # talks over the reply
    after = RATE // 2 + len(reply) + RATE // 2
    near[after:after + len(person)] = person_at_echo_level     # and once it has ended
    mic = i16(echo + near + np.random.default_rng(7).normal(0, 20, total))
    settled = np.arange(total // 320) >= 100                    # 2 s for the canceller to converge
    e, p = frame_rms(echo), frame_rms(near)
    return (i16(far), mic, (e > 300) & (p < 30) & settled, (p > 300) & (e < 30), (p > 300) & (e > 300))


def erle_db(mic: np.ndarray, out: np.ndarray, mask: np.ndarray) -> float:
    return 20 * np.log10(frame_rms(mic)[mask].mean() / max(frame_rms(out)[mask].mean(), 1.0))


@needs_flite
def test_webrtc_removes_the_echo_and_keeps_the_person(scene):
    pytest.importorskip("livekit.rtc", reason="the aec extra (livekit) is not installed")
    far, mic, echo_only, alone, over = scene
    assert vad_hits(mic)[echo_only].mean() > 0.9          # before: the echo is "speech"
    out = cancel(aec.create("webrtc", RATE), far, mic)
    assert erle_db(mic, out, echo_only) > 25
    assert vad_hits(out)[echo_only].mean() < 0.05         # after: the device no longer hears itself
    assert vad_hits(out)[alone].mean() > 0.9              # the person alone: untouched
    assert vad_hits(out)[over].mean() > 0.5               # talking over the reply at its echo's level


@needs_flite
@needs_speex
def test_speex_reduces_the_echo_less(scene):
    far, mic, echo_only, alone, _ = scene
    canceller = aec.create("speex", RATE)
    out = cancel(canceller, far, mic)
    assert abs(canceller.delay - 40 * RATE // 1000) <= N   # found the 40 ms by itself
    assert erle_db(mic, out, echo_only) > 8
    assert vad_hits(out)[alone].mean() > 0.9


def test_delay_estimate_on_real_speech():
    person = np.frombuffer(clip16k("goforward.raw"), "<i2").astype(np.float32)[: RATE * 2]
    mic = i16(echo_of(person, 73, -12.0) + np.random.default_rng(3).normal(0, 30, len(person)))
    lag, peak = aec.estimate_delay(i16(person), mic, RATE)
    assert lag == 73 * RATE // 1000 and peak > 0.1


def test_timeline_reads_what_was_played_at_that_time():
    t = aec.ReferenceTimeline(1000)                       # 1 kHz: one sample per ms
    t.write(np.arange(1, 21, dtype=np.int16), at=0.010)   # handed over from 10 ms to 30 ms
    assert t.read(10, at=0.010).tolist() == [0] * 10      # before it: silence
    assert t.read(10, at=0.020).tolist() == list(range(1, 11))
    # A burst: two frames delivered together (same timestamp) still read consecutive samples.
    assert t.read(10, at=0.030).tolist() == list(range(11, 21))
    assert t.read(10, at=0.030).tolist() == [0] * 10      # nothing was played after 30 ms
    assert t.resyncs == 0
    assert t.read(10, at=1.0).tolist() == [0] * 10        # a stall re-anchors the mic stream
    assert t.resyncs == 1


def test_bad_names_are_refused():
    with pytest.raises(ValueError, match="echo_cancel"):
        aec.create("acoustic")
    assert aec.create("off") is None


@pytest.mark.parametrize("kind", [k for k in ("webrtc", "speex") if aec.available(k)])
def test_bad_frames_and_rates_are_refused(kind):
    with pytest.raises(ValueError, match="160 int16"):
        aec.create(kind, RATE).process(np.zeros(320, np.int16), at=0.01)
    with pytest.raises(ValueError, match="rate must be one of"):
        aec.create(kind, 22050)


def test_timeline_wraps_around_its_ring():
    t = aec.ReferenceTimeline(1000, span_s=0.05)          # a 50-sample ring, 1 ms a sample
    t.write(np.zeros(40, np.int16), at=0.0)                # the clock's zero
    t.read(40, at=0.040)                                   # the mic stream is at sample 40
    t.write(np.arange(1, 31, dtype=np.int16), at=0.040)    # samples 40..69: across the ring's end
    assert t._ring[40:].tolist() == list(range(1, 11)) and t._ring[:20].tolist() == list(range(11, 31))
    assert t.read(30, at=0.070).tolist() == list(range(1, 31))
    assert t._ring.tolist() == [0] * 50                    # read back, then cleared
