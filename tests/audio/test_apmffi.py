"""AEC3 called straight into livekit's library gives what its Python API gives, sample for
sample, on real speech, with requests byte for byte as livekit's protobuf writes them; the
daemon never imports livekit's Python package; an untested livekit takes the probe or the API;
a refused request, a panic and livekit's own log lines say so."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from device.audio import aec, apmffi, lkffi

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
    direct = apmffi.open_apm(RATE)
    assert direct.kind == "direct"
    wrapped = apmffi.open_apm(RATE, direct=False)
    assert wrapped.kind == "wrapper"
    out = run(direct, far, mic)
    assert np.array_equal(out, run(wrapped, far, mic))
    echo_only = slice(RATE, 3 * RATE)
    assert np.abs(out[echo_only]).mean() < np.abs(mic[echo_only]).mean() / 10   # it did cancel


def test_a_delay_hint_given_once_is_the_same_as_before_every_frame(scene):
    far, mic = scene
    once = run(apmffi.open_apm(RATE, stream_delay_ms=60), far, mic)
    every = run(apmffi.open_apm(RATE, direct=False), far, mic, every_frame_delay=60)
    assert np.array_equal(once, every)


def test_a_livekit_of_another_major_version_takes_its_python_api(scene, monkeypatch, caplog):
    monkeypatch.setattr(lkffi, "installed_version", lambda: "2.0.0")
    with caplog.at_level(logging.INFO, logger="device.audio.apmffi"):
        canceller = aec.create("webrtc", RATE)
    assert canceller._apm.kind == "wrapper"
    assert "livekit 2.0.0" in caplog.text and "Python API" in caplog.text
    far, mic = scene
    out = np.concatenate([canceller.process(mic[i:i + N], at=i / RATE) for i in range(0, 2 * RATE, N)])
    assert len(out) == 2 * RATE


def test_an_untested_minor_version_takes_the_direct_calls_once_the_probe_agrees(monkeypatch, caplog):
    monkeypatch.setattr(lkffi, "installed_version", lambda: "1.99.0")
    probed = []
    real_probe = apmffi.probe
    monkeypatch.setattr(apmffi, "probe", lambda *args: probed.append(args) or real_probe(*args))
    with caplog.at_level(logging.INFO, logger="device.audio.apmffi"):
        apm = apmffi.open_apm(RATE)
    assert apm.kind == "direct" and "not used" not in caplog.text
    assert len(probed) == 1                      # checked against livekit's Python API first
    monkeypatch.setattr(apmffi, "probe", lambda *args: "they answer otherwise than its Python API")
    with caplog.at_level(logging.INFO, logger="device.audio.apmffi"):
        assert apmffi.open_apm(RATE).kind == "wrapper"
    assert "livekit 1.99.0" in caplog.text and "answer otherwise" in caplog.text


def test_a_refused_request_raises_and_names_it():
    apm = apmffi.open_apm(RATE)
    apm.close()                                   # the native module is gone: "handle not found"
    with pytest.raises(RuntimeError, match="refused the echo canceller's apm_process_stream"):
        apm.capture(np.zeros(N, np.int16))


LOG_PROBE = """
import logging, sys, threading
import numpy as np
from device.audio import apmffi
arrived, lines = threading.Event(), []
class Catch(logging.Handler):   # runs on livekit's thread: it only keeps the line
    def emit(self, record):
        if record.levelno == logging.ERROR and "handle not found" in record.getMessage():
            lines.append(record.getMessage())
            arrived.set()
logging.getLogger("livekit").addHandler(Catch())
apm = apmffi.open_apm(16000)
apm.close()
try:
    apm.capture(np.zeros(160, np.int16))
except RuntimeError as exc:
    refused = str(exc)
came = arrived.wait(30)
print(refused)
print(lines[0] if lines else "-")
print("arrived" if came else "never came", "livekit.rtc" in sys.modules)
"""


def test_livekits_own_log_line_comes_through_our_callback():
    """The refusal is logged by livekit's library and sent through the callback lkffi gave it
    (in a process where livekit's Python client never started)."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    out = subprocess.run([sys.executable, "-c", LOG_PROBE], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert "refused the echo canceller's apm_process_stream request (livekit's own log says why)" in lines[0]
    assert lines[1].startswith("livekit_ffi") and "handle not found" in lines[1]   # target: message
    assert lines[2] == "arrived False"


def test_an_error_reply_raises_with_livekits_words():
    apm = apmffi.open_apm(RATE)
    raw = np.zeros(2 * N + 1, np.uint8)
    misaligned = np.ndarray((N,), np.int16, raw.data, 1)   # livekit answers, it does not panic
    call = apmffi._Call(apmffi.PROCESS, apm.handle, misaligned, RATE)
    with pytest.raises(RuntimeError, match="apm_process_stream.*aligned"):
        apm._call(call)


def test_a_failed_canceller_logs_once_and_passes_the_microphone_on(caplog):
    canceller = aec.create("webrtc", RATE)
    canceller._apm.close()
    mic = (np.random.default_rng(1).standard_normal(N) * 1000).astype(np.int16)
    with caplog.at_level(logging.ERROR, logger="device.audio.aec"):
        outs = [canceller.process(mic, at=i / 100) for i in range(3)]
    assert all(np.array_equal(out, mic) for out in outs)
    assert "refused" in canceller.failed
    assert caplog.text.count("the echo canceller failed") == 1 and "echo guard" in caplog.text


class Ignored(apmffi.DirectApm):
    """A livekit that took the request and did nothing with it."""

    def capture(self, frame):
        return frame.copy()


class Refused(apmffi.DirectApm):
    """A livekit whose library will not take our requests."""

    def __init__(self, lib, rate, options, stream_delay_ms=None):
        raise RuntimeError("livekit refused the echo canceller's new_apm request")


def test_the_probe_takes_the_direct_calls_only_when_they_answer_as_the_api_does():
    options = apmffi._options(False)
    assert apmffi.probe(rtc, RATE, options) is None
    assert apmffi.probe(rtc, RATE, options, Ignored) == "they answer otherwise than its Python API"
    assert "new_apm" in apmffi.probe(rtc, RATE, options, Refused)


@pytest.mark.parametrize("noise_suppression", [False, True])
def test_requests_are_byte_for_byte_what_livekits_protobuf_writes(noise_suppression):
    from livekit.rtc._proto import ffi_pb2

    options = apmffi._options(noise_suppression)
    expected = ffi_pb2.FfiRequest()
    expected.new_apm.echo_canceller_enabled = True
    expected.new_apm.gain_controller_enabled = False
    expected.new_apm.high_pass_filter_enabled = True
    expected.new_apm.noise_suppression_enabled = noise_suppression
    settings = sorted((apmffi.OPTIONS[k], v) for k, v in options.items())
    assert lkffi.message((apmffi.NEW_APM, lkffi.message(*settings))) == expected.SerializeToString()
    delay = ffi_pb2.FfiRequest()
    delay.apm_set_stream_delay.apm_handle = 7
    delay.apm_set_stream_delay.delay_ms = 60
    assert lkffi.message((apmffi.SET_DELAY, lkffi.message((1, 7), (2, 60)))) == delay.SerializeToString()
    buffer = np.zeros(N, np.int16)
    for number, name in ((apmffi.PROCESS, "apm_process_stream"), (apmffi.REVERSE, "apm_process_reverse_stream")):
        call = apmffi._Call(number, 123456789, buffer, 48000)
        request = ffi_pb2.FfiRequest()
        part = getattr(request, name)
        part.apm_handle, part.data_ptr, part.size = 123456789, buffer.ctypes.data, buffer.nbytes
        part.sample_rate, part.num_channels = 48000, 1
        assert call.data == request.SerializeToString() and call.kind == name
        ok = ffi_pb2.FfiResponse()
        getattr(ok, name).SetInParent()
        assert call.ok == ok.SerializeToString()
        error = ffi_pb2.FfiResponse()
        getattr(error, name).error = "buffer is not aligned"
        assert apmffi._error(error.SerializeToString(), number) == "buffer is not aligned"


def test_livekits_events_are_read_logs_and_a_panic():
    from livekit.rtc._proto import ffi_pb2

    library = lkffi.Library(lkffi.library().lib, "1.2.1")
    event = ffi_pb2.FfiEvent()
    for level, text in ((ffi_pb2.LOG_ERROR, "it broke"), (ffi_pb2.LOG_INFO, "started"),
                        (ffi_pb2.LOG_DEBUG, "chatter")):
        record = event.logs.records.add()
        record.level, record.target, record.message, record.line = level, "livekit_ffi::server", text, 12
    seen: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = seen.append
    lk = logging.getLogger("livekit")
    lk.addHandler(handler)
    old = lk.level
    lk.setLevel(logging.DEBUG)
    try:
        lkffi._on_event(library, event.SerializeToString())
        panic = ffi_pb2.FfiEvent()
        panic.panic.message = "panic while handling request"
        lkffi._on_event(library, panic.SerializeToString())
        lkffi._on_event(library, b"\x92\x01\x05\x0a")   # cut short: logged, not raised into livekit's thread
    finally:
        lk.removeHandler(handler)
        lk.setLevel(old)
    lines = [(r.levelno, r.getMessage()) for r in seen]
    assert (logging.ERROR, "livekit_ffi::server: it broke") in lines
    assert (logging.INFO, "livekit_ffi::server: started") in lines
    assert not any("chatter" in text for _, text in lines)
    assert (logging.ERROR, "livekit's library panicked: panic while handling request") in lines
    assert library.panic == "panic while handling request"
    assert "it panicked: panic while handling request" in library.refusal()
    assert library.refusal() == "livekit's own log says why"    # quoted once, not at every later refusal
    assert any("could not be read" in text for _, text in lines)


def test_the_wire_format_reader_refuses_what_is_cut_short():
    assert lkffi.fields(lkffi.message((1, 300), (2, b"abc"), (3, False))) == [(1, 300), (2, b"abc"), (3, 0)]
    for bad in (b"\x08", b"\x12\x05ab", b"\x0b"):
        with pytest.raises(ValueError):
            lkffi.fields(bad)
    with pytest.raises(ValueError, match="negative"):
        lkffi.message((2, -60))


def test_a_negative_delay_is_refused_before_a_module_is_made():
    with pytest.raises(ValueError, match="stream_delay_ms must be 0 or more"):
        apmffi.new_module(lkffi.library(), apmffi._options(False), -5)


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


DAEMON_PROBE = """
import logging, os, sys, threading
import numpy as np
from device.audio import apmffi, build
c = build.echo_canceller('webrtc')
def names():
    return [open(f'/proc/self/task/{t}/comm').read().strip() for t in os.listdir('/proc/self/task')]
# livekit's log lines reach us on its tokio worker: once one has, the workers are running
logged, on = threading.Event(), []
class Catch(logging.Handler):
    def emit(self, record):
        on.append(open(f'/proc/self/task/{threading.get_native_id()}/comm').read().strip())
        logged.set()
logging.getLogger('livekit').addHandler(Catch())
spare = apmffi.open_apm(16000)
spare.close()
try:
    spare.capture(np.zeros(160, np.int16))   # refused: livekit logs "handle not found"
except RuntimeError:
    pass
logged.wait(60)
print(c._apm.kind, 'livekit.rtc' in sys.modules, any(m.startswith('google') for m in sys.modules),
      names().count('tokio-rt-worker'), 'TOKIO_WORKER_THREADS' in os.environ, on[:1])
"""


def test_the_daemons_canceller_loads_no_livekit_python_and_one_tokio_worker():
    """As `pivoice run` builds it: livekit's library only; protobuf and livekit.rtc stay out;
    one tokio worker (this machine has two cores; a Pi Zero 2 W four)."""
    probe = DAEMON_PROBE
    env = {k: v for k, v in os.environ.items() if k != "TOKIO_WORKER_THREADS"}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    # one worker, the log line came on it, and the variable is not left for its children
    assert out.stdout.split() == ["direct", "False", "False", "1", "False", "['tokio-rt-worker']"]
