"""``pivoice mic-test`` shows the wake word and the echo canceller at work; ``pivoice doctor``
checks both (through ALSA's file-plugin devices and the real libraries)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import wave

import pytest

from device import config as cfg
from device.diag.handsfree import checks

from .test_cli_commands import alsa_env, pivoice, write_config

pytest.importorskip("pymicro_wakeword", reason="the wake extra is not installed")


def wake_config(tmp_path, **wake: str):
    config = write_config(tmp_path / "c.toml", tmp_path / "s.sock", backend="pyaudio", input_device="fakemic",
                          output_device="fakespk")
    with config.open("a") as f:
        f.write("[wake]\n" + "".join(f'{k} = "{v}"\n' for k, v in wake.items()))
    return config


@pytest.mark.skipif(shutil.which("flite") is None, reason="flite is not installed")
def test_mic_test_shows_the_wake_word_heard(tmp_path):
    said = tmp_path / "said.wav"
    subprocess.run(["flite", "-voice", "rms", "-t", "hey jarvis, what time is it", "-o", str(said)], check=True)
    with wave.open(str(said)) as w:
        pcm = w.readframes(w.getnframes())
    raw = tmp_path / "mic.raw"
    raw.write_bytes(bytes(32000) + pcm + bytes(96000))
    config = wake_config(tmp_path, word="hey_jarvis")
    result = pivoice("mic-test", "3", "--json", "--echo", "--config", str(config), env=alsa_env(FAKEMIC_RAW=str(raw)))
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["wake_word"] == "hey_jarvis" and data["wake_detections"] == 1
    assert "echo_removed_db" in data          # --echo: the canceller ran on the microphone
    meter = pivoice("mic-test", "3", "--config", str(config), env=alsa_env(FAKEMIC_RAW=str(raw)))
    assert re.search(r"wake (0\.9\d|1\.00)", meter.stdout) and "heard 1 time" in meter.stdout   # a score can reach 1.00


@pytest.mark.skipif(shutil.which("flite") is None, reason="flite is not installed")
def test_mic_test_shows_the_stop_word_stopping_the_phrase(tmp_path):
    """With --echo the phrase plays as a reply does; the stop word said over it stops it, and the
    meter shows its score. ("alexa" stands in for a "stop" model, which pymicro-wakeword does
    not ship.)"""
    said = tmp_path / "said.wav"
    subprocess.run(["flite", "-voice", "rms", "-t", "alexa", "-o", str(said)], check=True)
    with wave.open(str(said)) as w:
        pcm = w.readframes(w.getnframes())
    raw = tmp_path / "mic.raw"
    raw.write_bytes(bytes(32000) + pcm + bytes(96000))
    config = wake_config(tmp_path, word="hey_jarvis", stop="alexa")   # talking does not stop it: the word does
    env = alsa_env(FAKEMIC_RAW=str(raw))
    data = json.loads(pivoice("mic-test", "3", "--json", "--echo", "--config", str(config), env=env).stdout)
    assert data["stop_word"] == "alexa" and data["stop_detections"] == 1
    meter = pivoice("mic-test", "3", "--echo", "--config", str(config), env=env).stdout
    # the score that stopped it: 0.5 and up (1.00 as often as not)
    assert re.search(r"stop (0\.[5-9]\d|1\.00)", meter) and "stop word 'alexa' heard 1 time" in meter
    quiet = pivoice("mic-test", "3", "--config", str(config), env=env).stdout   # the device never speaks
    assert "stop  -" in quiet and "stop word 'alexa' heard 0 time" in quiet


def test_doctor_checks_the_wake_word_model_and_the_canceller(tmp_path):
    good = cfg.parse({"wake": {"word": "hey_jarvis"}})
    by_name = {name: (result, detail, fix) for name, result, detail, fix in checks(good)}
    assert by_name["wake word"][0] == "PASS" and "Jarvis" in by_name["wake word"][1]
    assert by_name["echo canceller"][0] in ("PASS", "WARN")
    broken = tmp_path / "mine.json"
    broken.write_text("{not json")
    bad = cfg.parse({"wake": {"model": str(broken)}, "audio": {"echo_cancel": "off"}})
    by_name = {name: (result, detail, fix) for name, result, detail, fix in checks(bad)}
    assert by_name["wake word"][0] == "FAIL" and "not a microWakeWord model config" in by_name["wake word"][1]
    assert by_name["wake word"][2]                       # and says what to do
    assert by_name["echo canceller"][0] == "SKIP"


def test_doctor_checks_the_stop_word_and_how_the_canceller_is_called(tmp_path):
    by_name = {name: (result, detail) for name, result, detail, _ in checks(cfg.parse({"wake": {"stop": "alexa"}}))}
    assert by_name["stop word"][0] == "PASS" and "only while the device speaks" in by_name["stop word"][1]
    if by_name["echo canceller"][0] == "PASS":           # livekit installed: AEC3 through its library directly
        assert "called directly in livekit 1." in by_name["echo canceller"][1]
    broken = tmp_path / "stop.json"
    broken.write_text("[]")
    by_name = {name: (result, detail, fix) for name, result, detail, fix in checks(cfg.parse({"wake": {"stop": str(broken)}}))}
    assert by_name["stop word"][0] == "FAIL" and "[wake] stop" in by_name["stop word"][1] and by_name["stop word"][2]
    assert {name: result for name, result, _, _ in checks(cfg.parse({}))}["stop word"] == "SKIP"


def test_doctor_warns_of_a_stop_word_without_an_echo_canceller():
    result, detail, fix = {n: (r, d, f) for n, r, d, f in
                           checks(cfg.parse({"wake": {"stop": "alexa"}, "audio": {"echo_cancel": "off"}}))}["stop word"]
    assert result == "WARN" and "no echo canceller" in detail and "echo_cancel" in fix


def test_a_missing_stop_model_is_named_as_the_stop_word(tmp_path):
    by_name = {n: (r, d) for n, r, d, _ in checks(cfg.parse({"wake": {"stop": str(tmp_path / "stop.json")}}))}
    assert by_name["stop word"][0] == "FAIL" and by_name["stop word"][1].startswith("[wake] stop: model file")
