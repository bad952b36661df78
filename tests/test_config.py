"""The config file: defaults, presets, and errors that name the key, the file and the fix."""

from __future__ import annotations

import os

import pytest

from device import config as cfg
from device.audio.turns import EchoGuard, TurnMode
from device.errors import ConfigError


def write(tmp_path, text: str):
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def test_missing_default_file_means_embedded_defaults(monkeypatch, tmp_path):
    monkeypatch.delenv("PIVOICE_CONFIG", raising=False)
    monkeypatch.setattr(cfg, "DEFAULT_PATH", tmp_path / "absent.toml")
    config = cfg.load()
    assert config.realtime.url == "wss://api.openai.com/v1/realtime"
    assert config.realtime.dialect == "ga" and config.realtime.session_limit == 1800
    assert config.turns.mode is TurnMode.SERVER_VAD and config.audio.input_device == "default"


def test_a_named_file_must_exist(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        cfg.load(tmp_path / "nope.toml")


def test_pivoice_config_environment_variable(monkeypatch, tmp_path):
    path = write(tmp_path, '[turns]\nmode = "push_to_talk"\n[audio]\necho_guard = "half_duplex"\n')
    monkeypatch.setenv("PIVOICE_CONFIG", str(path))
    config = cfg.load()
    assert config.turns.mode is TurnMode.PUSH_TO_TALK and config.audio.echo_guard is EchoGuard.HALF_DUPLEX
    assert config.source == str(path)


def test_preset_fills_devices_and_pins_unless_set(tmp_path):
    config = cfg.load(write(tmp_path, '[hardware]\npreset = "respeaker-2mic"\n[audio]\noutput_device = "hw:1"\n'))
    assert config.audio.input_device == "card:seeed2micvoicec"
    assert config.audio.output_device == "hw:1"
    assert config.gpio.leds.kind == "apa102" and config.gpio.button_pin == 17


@pytest.mark.parametrize("text, names", [
    ("[realtime]\nmodel = 5\n", "[realtime] model: must be a str"),
    ("[realtime]\nurl = \"https://x\"\n", "[realtime] url"),
    ("[realtime]\ndialect = \"v2\"\n", "[realtime] dialect"),
    ("[audio]\nvolume = 150\n", "[audio] volume"),
    ("[audio]\ninput_devise = \"x\"\n", "[audio] input_devise: unknown key"),
    ("[turns]\nmode = \"always\"\n", "[turns] mode"),
    ("[gpio]\npin_factory = \"pigpio\"\n", "[gpio] pin_factory"),
    ("[gpio]\nbutton_pin = 40\n", "[gpio] button_pin"),
    ("[hardware]\npreset = \"seeed\"\n", "[hardware] preset"),
    ("[speaker]\nvolume = 3\n", "[speaker]: unknown section"),
    ("[[tools]]\nname = \"x\"\nurl = \"ftp://x\"\n", "[[tools]] #1 url"),
    ("[realtime\n", "not valid TOML"),
])
def test_errors_name_the_key_and_the_file(tmp_path, text, names):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        cfg.load(path)
    assert names in str(err.value) and str(path) in str(err.value)


def test_the_key_is_refused_in_the_config_file(tmp_path):
    with pytest.raises(ConfigError, match="OPENAI_API_KEY") as err:
        cfg.load(write(tmp_path, '[realtime]\napi_key = "sk-secret-123"\n'))
    assert "sk-secret" not in str(err.value)


def test_api_key_from_environment_or_systemd_credential(tmp_path):
    assert cfg.api_key({"OPENAI_API_KEY": " sk-a \n"}) == "sk-a"
    (tmp_path / "openai_api_key").write_text("sk-cred\n")
    assert cfg.api_key({"CREDENTIALS_DIRECTORY": str(tmp_path)}) == "sk-cred"
    assert cfg.api_key({}) == ""


def test_the_shipped_default_config_is_valid():
    shipped = os.path.join(os.path.dirname(__file__), "..", "services", "config.toml")
    config = cfg.load(shipped)
    assert config.realtime.model and config.turns.mode is TurnMode.SERVER_VAD
