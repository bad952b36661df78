"""The config file: defaults, presets, and errors that name the key, the file and the fix."""

from __future__ import annotations

import os

import pytest

from device import config as cfg
from device import configcheck
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


# --------------------------------------------------------------- values that cannot work
LONG_SOCKET = "/run/" + "p" * 110 + ".sock"
BAD_VALUES = [
    # non-finite and negative numbers for times, sizes and counts
    ("[realtime]\nsession_limit = inf\n", "[realtime] session_limit"),
    ("[realtime]\nsession_limit = nan\n", "[realtime] session_limit"),
    ("[realtime]\nrotate_margin = nan\n", "[realtime] rotate_margin"),
    ("[realtime]\nrotate_margin = -5.0\n", "[realtime] rotate_margin"),
    ("[realtime]\nfatal_retry = -inf\n", "[realtime] fatal_retry"),
    ("[realtime]\ncarry_turns = -1\n", "[realtime] carry_turns"),
    ("[realtime]\nsimulator_speedup = 0\n", "[realtime] simulator_speedup"),
    ("[audio]\nmic_period_ms = -50\n", "[audio] mic_period_ms"),
    ("[audio]\nidle_period_ms = 5000\n", "[audio] idle_period_ms"),
    ("[audio]\nprebuffer_ms = -1\n", "[audio] prebuffer_ms"),
    ("[turns]\nsilence_ms = -500\n", "[turns] silence_ms"),
    ("[turns]\nvad_hangover_ms = -1\n", "[turns] vad_hangover_ms"),
    ("[turns]\nvad_echo_margin_db = nan\n", "[turns] vad_echo_margin_db"),
    ("[gpio]\nhold_s = inf\n", "[gpio] hold_s"),
    ("[gpio]\nbrightness = nan\n", "[gpio] brightness"),
    ("[gpio]\nleds = \"gpio\"\nled_count = -3\n", "[gpio] led_count"),
    ("[[tools]]\nname = \"x\"\nurl = \"http://h/x\"\ntimeout = nan\n", "[[tools]] #1 timeout"),
    # URLs: ports, schemes, hosts
    ("[realtime]\nurl = \"wss://api.openai.com:99999/v1/realtime\"\n", "[realtime] url"),
    ("[realtime]\nurl = \"ws://localhost:0/\"\n", "[realtime] url"),
    ("[realtime]\nurl = \"wss:///v1/realtime\"\n", "[realtime] url"),
    ("[realtime]\nurl = \"http://api.openai.com/v1/realtime\"\n", "[realtime] url"),
    ("[[tools]]\nname = \"x\"\nurl = \"http://h:70000/x\"\n", "[[tools]] #1 url"),
    ("[[tools]]\nname = \"x\"\nurl = \"https:///x\"\n", "[[tools]] #1 url"),
    # socket paths
    (f"[control]\nsocket = \"{LONG_SOCKET}\"\n", "[control] socket"),
    ("[control]\nsocket = \"relative/control.sock\"\n", "[control] socket"),
    ("[control]\nsocket = \"\"\n", "[control] socket"),
    ("[control]\nsocket = \"/tmp/\"\n", "[control] socket"),
    ("[control]\nsocket = \"/tmp\"\n", "[control] socket"),
    ("[control]\nsocket = \"/etc/hostname/control.sock\"\n", "[control] socket"),
    ("[control]\nsocket = \"/etc/hostname\"\n", "[control] socket"),
    # tool names
    ("[[tools]]\nname = \"set_volume\"\nurl = \"http://h/x\"\n", "[[tools]] #1 name"),
    ("[[tools]]\nname = \"end_conversation\"\nurl = \"http://h/x\"\n", "[[tools]] #1 name"),
    ("[[tools]]\nname = \"turn on lights\"\nurl = \"http://h/x\"\n", "[[tools]] #1 name"),
    ("[[tools]]\nname = \"" + "n" * 65 + "\"\nurl = \"http://h/x\"\n", "[[tools]] #1 name"),
    ("tools = [1, 2]\n", "[[tools]] #1"),
    # nesting
    ("[[tools]]\nname = \"x\"\nurl = \"http://h/x\"\nparameters = {a = " + "[" * 40 + "]" * 40 + "}\n",
     "nested more than"),
]


@pytest.mark.parametrize("text, names", BAD_VALUES, ids=lambda v: v.split("\n")[1][:40] if "\n" in v else None)
def test_values_that_cannot_work_are_config_errors_naming_key_and_file(tmp_path, text, names):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        cfg.load(path)
    assert names in str(err.value) and str(path) in str(err.value)


def test_a_non_utf8_file_is_a_config_error(tmp_path):
    path = tmp_path / "config.toml"
    path.write_bytes(b"[realtime]\nvoice = \"caf\xe9\"\n")
    with pytest.raises(ConfigError, match="not UTF-8") as err:
        cfg.load(path)
    assert str(path) in str(err.value) and "iconv" in str(err.value)


def test_an_array_nested_deeper_than_the_parser_can_go_is_a_config_error(tmp_path):
    path = write(tmp_path, "a = " + "[" * 100_000 + "]" * 100_000 + "\n")
    with pytest.raises(ConfigError, match="nested too deeply") as err:
        cfg.load(path)
    assert str(path) in str(err.value)


def test_a_directory_as_config_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="is a directory"):
        cfg.load(tmp_path)


@pytest.mark.parametrize("url", [
    "wss://api.openai.com/v1/realtime?api_key=sk-proj-PASTED123",
    "wss://api.openai.com/v1/realtime?model=x&key=abcdef123456",
    "wss://api.openai.com/v1/realtime/sk-proj-PASTED123",
    "wss://user:hunter2secret@api.openai.com/v1/realtime",
])
def test_a_key_pasted_into_the_url_is_refused_without_echoing_it(tmp_path, url):
    path = write(tmp_path, f"[realtime]\nurl = \"{url}\"\n")
    with pytest.raises(ConfigError, match=r"\[realtime\] url: contains") as err:
        cfg.load(path)
    message = str(err.value)
    assert "OPENAI_API_KEY" in message
    for secret in ("PASTED123", "abcdef123456", "hunter2secret"):
        assert secret not in message


def test_nothing_shaped_like_a_key_is_echoed_from_any_value(tmp_path):
    path = write(tmp_path, "[audio]\nbackend = \"sk-proj-ECHOED999\"\n")
    with pytest.raises(ConfigError) as err:
        cfg.load(path)
    assert "ECHOED999" not in str(err.value) and "[audio] backend" in str(err.value)


def test_good_values_at_the_edges_still_load(tmp_path):
    config = cfg.load(write(tmp_path, "[realtime]\nurl = \"ws://127.0.0.1:65535/v1/realtime?model=x\"\n"
                                      "rotate_margin = 0\n[control]\nsocket = \"/run/" + "p" * 95 + ".sock\"\n"
                                      "[[tools]]\nname = \"lights-on_2\"\nurl = \"http://10.0.0.2:8080/x\"\n"))
    assert config.realtime.url.endswith("model=x") and config.tools[0].name == "lights-on_2"


def test_builtin_tool_names_match_the_device_tools():
    from device.tools.builtin import builtin_tools

    class Device:
        def set_volume(self, level): ...
        def set_muted(self, muted): ...
        def end_conversation(self): ...

    assert {spec.tool.name for spec in builtin_tools(Device())} == set(configcheck.BUILTIN_TOOL_NAMES)


CLI_CASES = [
    ("[realtime]\nsession_limit = inf\n", "[realtime] session_limit"),
    ("[realtime]\nurl = \"wss://api.openai.com:99999/\"\n", "[realtime] url"),
    (f"[control]\nsocket = \"{LONG_SOCKET}\"\n", "[control] socket"),
    ("[[tools]]\nname = \"get_time\"\nurl = \"http://h/x\"\n", "[[tools]] #1 name"),
    ("a = " + "[" * 50_000 + "]" * 50_000 + "\n", "nested too deeply"),
    (b"[audio]\ninput_device = \"\xff\"\n", "not UTF-8"),
    ("[realtime]\nurl = \"wss://h/v1?api_key=sk-live-NOPE42\"\n", "[realtime] url: contains"),
]


@pytest.mark.parametrize("text, names", CLI_CASES, ids=range(len(CLI_CASES)))
def test_pivoice_run_with_a_bad_config_exits_2_with_the_message(tmp_path, text, names):
    import subprocess
    import sys

    path = tmp_path / "bad.toml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    result = subprocess.run([sys.executable, "-m", "device.cli", "run", "--config", str(path)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stderr
    assert names in result.stderr and str(path) in result.stderr
    assert "Traceback" not in result.stderr and "NOPE42" not in result.stderr
