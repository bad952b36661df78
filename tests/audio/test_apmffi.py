"""AEC3 called straight into livekit's library gives what its Python API gives, sample for
sample, on real speech; an unknown livekit takes the API; a refused request says so."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from device.audio import aec, apmffi

from .helpers import clip16k

rtc = pytest.importorskip("livekit.rtc", reason="the aec extra (livekit) is not installed")
RATE, N = 16000, 160


def speech(name: str) -> np.ndarray:
    return np.frombuffer(clip16k(name), "<i2").astype(np.float32)


@pytest.fixture(scope="module")
def scene():
    """A real voice as the reply, its echo 40 ms late at -6 dB, a person talking over it."""
    far = speech("numbers.raw")[: 4 * RATE]
    d = 40 * RATE // 1000
    mic = np.zeros(len(far), np.float32)
    mic[d:] = far[:-d] * 0.5
    person = speech("goforward.raw")[: RATE] * 0.5
    mic[-len(person):] += person
    return far.astype(np.int16), np.clip(mic, -32768, 32767).astype(np.int16)


def run(apm, far: np.ndarray, mic: np.ndarray, every_frame_delay: int | None = None) -> np.ndarray:
    out = np.zeros_like(mic)
    for i in range(len(mic) // N):
        s = slice(i * N, (i + 1) * N)
        apm.reverse(far[s])
        if every_frame_delay is not None:
            apm._module.set_stream_delay_ms(every_frame_delay)
        out[s] = apm.capture(mic[s])
    return out


def test_direct_calls_give_the_wrappers_output_sample_for_sample(scene):
    far, mic = scene
    direct = apmffi.open_apm(rtc, RATE)
    assert direct.kind == "direct"
    wrapped = apmffi.open_apm(rtc, RATE, direct=False)
    assert wrapped.kind == "wrapper"
    out = run(direct, far, mic)
    assert np.array_equal(out, run(wrapped, far, mic))
    echo_only = slice(RATE, 3 * RATE)
    assert np.abs(out[echo_only]).mean() < np.abs(mic[echo_only]).mean() / 10   # it did cancel


def test_a_delay_hint_given_once_is_the_same_as_before_every_frame(scene):
    far, mic = scene
    once = run(apmffi.open_apm(rtc, RATE, stream_delay_ms=60), far, mic)
    every = run(apmffi.open_apm(rtc, RATE, direct=False), far, mic, every_frame_delay=60)
    assert np.array_equal(once, every)


def test_a_livekit_of_another_major_version_takes_its_python_api(scene, monkeypatch, caplog):
    import livekit.rtc.version

    monkeypatch.setattr(livekit.rtc.version, "__version__", "2.0.0")
    with caplog.at_level(logging.INFO, logger="device.audio.apmffi"):
        canceller = aec.create("webrtc", RATE)
    assert canceller._apm.kind == "wrapper"
    assert "livekit 2.0.0" in caplog.text and "Python API" in caplog.text
    far, mic = scene
    out = np.concatenate([canceller.process(mic[i:i + N], at=i / RATE) for i in range(0, 2 * RATE, N)])
    assert len(out) == 2 * RATE


def test_a_refused_request_raises_and_names_it():
    apm = apmffi.open_apm(rtc, RATE)
    apm._module._ffi_handle.dispose()            # the native module is gone: "handle not found"
    with pytest.raises(RuntimeError, match="refused the echo canceller's apm_process_stream"):
        apm.capture(np.zeros(N, np.int16))


def test_an_error_reply_raises_with_livekits_words():
    from livekit.rtc._proto import ffi_pb2

    apm = apmffi.open_apm(rtc, RATE)
    raw = np.zeros(2 * N + 1, np.uint8)
    misaligned = np.ndarray((N,), np.int16, raw.data, 1)   # livekit answers, it does not panic
    call = apmffi._Call(ffi_pb2, "apm_process_stream", apm._module._ffi_handle.handle, misaligned, RATE)
    with pytest.raises(RuntimeError, match="apm_process_stream.*aligned"):
        apm._call(call)


class Ignored(apmffi.DirectApm):
    """A livekit that took the request and did nothing with it."""

    def capture(self, frame):
        return frame.copy()


class Refused(apmffi.DirectApm):
    """A livekit whose client lost the private name the direct calls use."""

    def __init__(self, module, rate):
        raise AttributeError("'FfiClient' object has no attribute '_ffi_lib'")


def test_the_probe_takes_the_direct_calls_only_when_they_answer_as_the_api_does():
    options = {"echo_cancellation": True, "high_pass_filter": True, "noise_suppression": False}
    assert apmffi.probe(rtc, RATE, options) is None
    assert apmffi.probe(rtc, RATE, options, Ignored) == "they answer otherwise than its Python API"
    assert "_ffi_lib" in apmffi.probe(rtc, RATE, options, Refused)


def test_a_livekit_whose_library_will_not_load_is_named_not_a_traceback(tmp_path):
    bogus = tmp_path / "liblivekit_ffi.so"
    bogus.write_text("not a library")
    probe = ("from device.audio import aec, build\n"
             "print('auto:', build.echo_canceller('auto'))\n"
             "try:\n    aec.create('webrtc')\nexcept aec.AecUnavailable as exc:\n    print('refused:', exc)\n")
    env = {**os.environ, "LIVEKIT_LIB_PATH": str(bogus), "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "auto: None" in out.stdout                       # "auto": the echo guard, and a warning
    assert "no echo canceller" in out.stderr and "did not start" in out.stderr
    assert "refused: " in out.stdout and "ImportError: failed to load" in out.stdout
    assert "force-reinstall" in out.stdout and "Traceback" not in out.stderr
