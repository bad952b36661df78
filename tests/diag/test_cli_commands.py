"""The admin's commands, as run over SSH: real processes, a real daemon on simulated hardware
with the built-in simulator, and the real ALSA stack (file-plugin devices) for the audio tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import wave
from pathlib import Path

import numpy as np
import pytest

from device import config as cfg
from device.diag import gpio as gpio_diag

from ..sdnotify import NotifySocket

ROOT = Path(__file__).parents[2]
PIVOICE = [sys.executable, "-m", "device.cli"]
ASOUNDRC = ROOT / "tests" / "fixtures" / "asoundrc.fake"
CLIP = Path("/usr/share/pocketsphinx/test/data/goforward.raw")
COMMANDS = ["run", "simulator", "demo", "status", "events", "say", "devices", "mic-test", "speaker-test", "leds",
            "button-test", "doctor", "logs"]


def pivoice(*args: str, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([*PIVOICE, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def write_config(path: Path, socket: Path, **audio: str) -> Path:
    lines = ['[realtime]', 'simulator = true', 'simulator_speedup = 8', '[audio]']
    lines += [f'{k} = "{v}"' for k, v in {"backend": "simulated", **audio}.items()]
    lines += ['[gpio]', 'pin_factory = "mock"', 'led_pins = [18]', '[control]', f'socket = "{socket}"',
              '[metrics]', 'listen = "127.0.0.1:0"']
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("daemon")
    sock = tmp / "control.sock"
    config = write_config(tmp / "config.toml", sock)
    notify = NotifySocket(tmp / "notify")      # it tells systemd its state: wait for "idle" there
    proc = subprocess.Popen([*PIVOICE, "run", "--config", str(config)], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env={**os.environ, "NOTIFY_SOCKET": notify.path})
    try:
        notify.until("STATUS", timeout=60, value_starts="idle")
    except AssertionError:
        proc.kill()
        raise AssertionError(proc.stdout.read()) from None
    yield config
    proc.terminate()
    proc.wait(20)
    notify.close()


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command):
    result = pivoice(command, "--help")
    assert result.returncode == 0 and "usage: pivoice" in result.stdout


def test_status_for_people_and_scripts(daemon):
    human = pivoice("status", "--config", str(daemon))
    assert human.returncode == 0, human.stderr
    for label in ("state", "connection", "session", "rotation", "endpoint", "counters", "last error"):
        assert any(line.startswith(label) for line in human.stdout.splitlines()), label
    assert "connected" in human.stdout and "sess_" in human.stdout and "built-in simulator" in human.stdout
    data = json.loads(pivoice("status", "--json", "--config", str(daemon)).stdout)
    assert data["state"] == "idle" and data["link"] == "up" and data["rotation_in_s"] > 0
    for counter in ("turns", "reconnects", "rotations", "underruns", "overflows", "voice_barge_ins",
                    "talk_over_dismissed", "speaker_hushes"):
        assert isinstance(data[counter], int)
    counters = next(line for line in human.stdout.splitlines() if line.startswith("counters"))
    assert "0 heard over the reply, 0 dismissed: nobody went on; speaker hushed 0" in counters
    assert "ms periods" in next(line for line in human.stdout.splitlines() if line.startswith("audio"))


def test_say_speaks_the_reply_and_events_show_it(daemon):
    events = subprocess.Popen([*PIVOICE, "events", "--config", str(daemon), "--json", "--kinds", "say,tool,state,reply", "--count", "5"], cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert "following the daemon's events" in events.stderr.readline()   # subscribed: nothing is missed
    said = pivoice("say", "--config", str(daemon), "What", "time", "is", "it?")
    assert said.returncode == 0, said.stdout + said.stderr
    # The default model (gpt-realtime-2) speaks a preamble before the tool call, then the answer.
    assert said.stdout.splitlines()[0] == "device: Let me check that."
    assert said.stdout.splitlines()[-1].startswith("device: Done. The result is time ")
    out, _ = events.communicate(timeout=60)
    kinds = [json.loads(line)["kind"] for line in out.splitlines()]
    assert kinds[0] == "say" and "tool" in kinds and "state" in kinds
    status = json.loads(pivoice("status", "--json", "--config", str(daemon)).stdout)
    assert status["replies"] >= 2


def test_doctor_with_the_daemon_running(daemon):
    result = pivoice("doctor", "--json", "--config", str(daemon))
    report = json.loads(result.stdout)
    checks = {c["name"]: c for c in report["checks"]}
    assert checks["config"]["result"] == "PASS"
    assert checks["daemon"]["result"] == "PASS" and "state idle" in checks["daemon"]["detail"]
    assert checks["disk"]["result"] in ("PASS", "WARN")
    assert all(c["result"] in ("PASS", "WARN", "FAIL", "SKIP") for c in report["checks"])
    assert result.returncode == (1 if any(c["result"] == "FAIL" for c in report["checks"]) else 0)


def test_daemon_not_running(tmp_path):
    config = write_config(tmp_path / "c.toml", tmp_path / "absent.sock")
    for args in (["status"], ["events"], ["say", "hello"]):
        result = pivoice(*args, "--config", str(config))
        assert result.returncode == 3, args
        assert "daemon is not running" in result.stderr and "systemctl start pivoice" in result.stderr
    doctor = pivoice("doctor", "--config", str(config))
    assert "WARN  daemon" in doctor.stdout and "not running" in doctor.stdout


def test_doctor_finds_a_bad_config_and_a_bad_key(tmp_path, simulator_factory_sync):
    bad = tmp_path / "bad.toml"
    bad.write_text('[turns]\nmode = "telepathy"\n')
    result = pivoice("doctor", "--config", str(bad))
    assert result.returncode == 1 and "FAIL  config" in result.stdout and "[turns] mode" in result.stdout
    url = simulator_factory_sync(api_keys="sk-right-key-000000")
    config = tmp_path / "remote.toml"
    config.write_text(f'[realtime]\nurl = "{url}"\n[audio]\nbackend = "simulated"\n[gpio]\npin_factory = "mock"\n')
    wrong = pivoice("doctor", "--config", str(config), env={"OPENAI_API_KEY": "sk-wrong-key-111111"})
    assert wrong.returncode == 1
    assert "FAIL  realtime" in wrong.stdout and "rejected the API key" in wrong.stdout
    assert "sk-wrong" not in wrong.stdout
    right = pivoice("doctor", "--config", str(config), "--json", env={"OPENAI_API_KEY": "sk-right-key-000000"})
    checks = {c["name"]: c for c in json.loads(right.stdout)["checks"]}
    assert checks["dns"]["result"] == "PASS" and checks["realtime"]["result"] == "PASS"
    assert "session sess_" in checks["realtime"]["detail"]


@pytest.fixture
def simulator_factory_sync():
    procs = []

    def start(api_keys: str) -> str:
        proc = subprocess.Popen([*PIVOICE, "simulator", "--port", "0", "--api-key", api_keys], cwd=ROOT,
                                stdout=subprocess.PIPE, text=True)
        procs.append(proc)
        return proc.stdout.readline().split(" on ", 1)[1].strip()

    yield start
    for proc in procs:
        proc.terminate()
        proc.wait(10)


# ---------------------------------------------------------------- audio through ALSA
def alsa_env(**files: str) -> dict[str, str]:
    return {"ALSA_CONFIG_PATH": f"/usr/share/alsa/alsa.conf:{ASOUNDRC}", **files}


def test_devices_lists_rates_and_the_selection(tmp_path):
    config = write_config(tmp_path / "c.toml", tmp_path / "s.sock", backend="pyaudio", input_device="fakemic",
                          output_device="fakespk")
    result = pivoice("devices", "--json", "--config", str(config), env=alsa_env())
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    names = {d["name"]: d for d in data["devices"]}
    assert 16000 in names["fakemic"]["input_rates"] and 48000 in names["fakemic48s"]["input_rates"]
    assert data["selected"]["input"]["name"] == "fakemic" and "exact name" in data["selected"]["input"]["why"]
    assert data["selected"]["output"]["name"] == "fakespk"
    missing = write_config(tmp_path / "m.toml", tmp_path / "s.sock", backend="pyaudio", input_device="seeed2mic")
    result = pivoice("devices", "--config", str(missing), env=alsa_env())
    assert result.returncode == 1 and "input: NOT FOUND: no input device named 'seeed2mic'" in result.stdout


def test_mic_test_measures_speech_and_saves_it(tmp_path):
    raw = tmp_path / "mic.raw"
    raw.write_bytes(CLIP.read_bytes() + bytes(32 * 1000))
    config = write_config(tmp_path / "c.toml", tmp_path / "s.sock", backend="pyaudio", input_device="fakemic")
    wav = tmp_path / "heard.wav"
    result = pivoice("mic-test", "2", "--json", "--save", str(wav), "--config", str(config),
                     env=alsa_env(FAKEMIC_RAW=str(raw)))
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["rate"] == 16000 and data["verdict"] == "ok" and data["speech_share"] > 0.3
    assert -40 < data["rms_dbfs"] < -5 and data["clipped_samples"] == 0
    with wave.open(str(wav)) as w:
        assert w.getframerate() == 16000 and w.getnframes() >= 16000 * 1.9
    meter = pivoice("mic-test", "1", "--config", str(config), env=alsa_env(FAKEMIC_RAW=str(raw)))
    assert meter.stdout.count("rms ") >= 4 and "speech yes" in meter.stdout


def test_mic_test_says_when_there_is_no_signal(tmp_path):
    raw = tmp_path / "silence.raw"
    raw.write_bytes(bytes(32 * 3000))
    config = write_config(tmp_path / "c.toml", tmp_path / "s.sock", backend="pyaudio", input_device="fakemic")
    result = pivoice("mic-test", "1", "--config", str(config), env=alsa_env(FAKEMIC_RAW=str(raw)))
    assert result.returncode == 1 and "no signal" in result.stdout


def test_speaker_test_plays_a_tone(tmp_path):
    wav = tmp_path / "played.wav"
    config = write_config(tmp_path / "c.toml", tmp_path / "s.sock", backend="pyaudio", output_device="fakespk")
    result = pivoice("speaker-test", "--tone", "1000", "--seconds", "1", "--volume", "100", "--config", str(config),
                     env=alsa_env(FAKESPK_WAV=str(wav)))
    assert result.returncode == 0, result.stderr
    with wave.open(str(wav)) as w:
        rate = w.getframerate()
        x = np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float32)
    x = np.trim_zeros(x)
    spectrum = np.abs(np.fft.rfft(x))
    assert abs(np.argmax(spectrum) * rate / len(x) - 1000) < 5
    # One second of tone, without gaps: resampling 24 -> 16 kHz must not insert silence.
    assert 0.95 < len(x) / rate < 1.02
    silent = np.flatnonzero(np.abs(x) < 1)
    assert not any(np.diff(silent) == 1)  # no two zero samples in a row inside a 1 kHz tone


# ---------------------------------------------------------------- GPIO with mock pins
def test_leds_shows_every_state(tmp_path):
    config = write_config(tmp_path / "c.toml", tmp_path / "s.sock")
    result = pivoice("leds", "--seconds", "0.1", "--config", str(config))
    assert result.returncode == 0, result.stderr
    for state in ("idle", "listening", "thinking", "speaking", "muted", "offline", "error"):
        assert f"  {state}" in result.stdout


def test_button_test_prints_gestures(tmp_path, capsys):
    import asyncio

    from gpiozero.pins.mock import MockFactory

    config = cfg.load(write_config(tmp_path / "c.toml", tmp_path / "s.sock"))
    factory = MockFactory()

    def press(button):
        loop = asyncio.get_running_loop()
        pin = factory.pin(17)
        loop.call_later(0.1, pin.drive_low)
        loop.call_later(0.25, pin.drive_high)

    assert gpio_diag.button_test(config, seconds=1.2, pin_factory=factory, on_ready=press) == 0
    out = capsys.readouterr().out
    assert "tap" in out and "1 gesture(s) recognised" in out
    assert gpio_diag.button_test(config, seconds=0.3, pin_factory=MockFactory()) == 1


def test_human_event_and_status_lines():
    from device.diag.daemon import render_event, render_status

    line = render_event({"kind": "state", "at": 1.0, "wall": 0, "state": "speaking", "previous": "thinking",
                         "cause": "audio_started"})
    assert line.endswith("state        thinking -> speaking (audio_started)")
    assert 'text="hello there"' in render_event({"kind": "say", "wall": 0, "text": "hello there"})
    text = render_status({"state": "offline", "state_for_s": 75, "link": "backoff", "next_retry_in_s": 3.2,
                          "session_id": None, "rotation_in_s": None, "last_error": "cannot reach api.openai.com",
                          "last_error_at": 86400, "api_key": "set", "endpoint": "wss://x", "model": "m", "dialect": "ga"})
    assert "offline (for 1m15s)" in text and "reconnecting in 3.2 s" in text
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(86400))
    assert f"last error  cannot reach api.openai.com ({when})" in text
    assert "echo        no canceller: the echo guard decides" in text


def test_the_status_says_what_the_echo_canceller_does():
    from device.diag.daemon import render_status

    aec = {"kind": "webrtc", "frames": 5000, "skipped": 120, "energy_in": 1e12, "energy_out": 1e9, "failed": None,
           "standing_in": False}
    assert "echo        webrtc: 5000 frames cleaned (120 skipped: nothing played), 30 dB taken off" in render_status(
        {"echo_canceller": aec})
    paused = render_status({"echo_canceller": {**aec, "standing_in": True}})
    assert "webrtc, paused: the microphone is missing" in paused
    failed = render_status({"echo_canceller": {**aec, "failed": "handle not found", "standing_in": True}})
    assert "webrtc FAILED (handle not found): the echo guard decides" in failed
    fresh = render_status({"echo_canceller": {**aec, "frames": 0, "energy_in": 0.0, "energy_out": 0.0}})
    echo = next(line for line in fresh.splitlines() if line.startswith("echo "))
    assert echo.endswith("(120 skipped: nothing played)")   # nothing taken off yet: no dB figure
