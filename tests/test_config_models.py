"""Config for today's models and client secrets: [realtime] reasoning_effort, token_url, and the
device token from the environment or the systemd credential (never the config file)."""

from __future__ import annotations

import pytest

from device import config as cfg
from device.errors import ConfigError


def test_defaults_are_a_current_reasoning_model_at_low_effort():
    rt = cfg.parse({}).realtime
    assert (rt.model, rt.reasoning_effort, rt.token_url) == ("gpt-realtime-2", "low", "")


@pytest.mark.parametrize("effort", ["minimal", "low", "medium", "high", "xhigh"])
def test_every_documented_effort_is_accepted(effort):
    assert cfg.parse({"realtime": {"reasoning_effort": effort}}).realtime.reasoning_effort == effort


@pytest.mark.parametrize("table, names", [
    ({"reasoning_effort": "max"}, ["[realtime] reasoning_effort", "'max'", "xhigh"]),
    ({"reasoning_effort": 3}, ["[realtime] reasoning_effort", "must be a str"]),
    ({"token_url": "homeserver:8788/token"}, ["[realtime] token_url", "http://"]),
    ({"device_token": "abc"}, ["[realtime] device_token", "PIVOICE_DEVICE_TOKEN", "pivoice_device_token"]),
])
def test_mistakes_name_the_key_and_the_fix(table, names):
    with pytest.raises(ConfigError) as err:
        cfg.parse({"realtime": table}, source="/etc/pivoice/config.toml")
    for name in names:
        assert name in str(err.value)


def test_token_url_is_read():
    rt = cfg.parse({"realtime": {"token_url": "https://home.example/token"}}).realtime
    assert rt.token_url == "https://home.example/token"


def test_device_token_from_env_then_credential(tmp_path):
    (tmp_path / "pivoice_device_token").write_text("cred-token-0123456789\n")
    assert cfg.device_token({"PIVOICE_DEVICE_TOKEN": " env-token-0123456789 "}) == "env-token-0123456789"
    assert cfg.device_token({"CREDENTIALS_DIRECTORY": str(tmp_path)}) == "cred-token-0123456789"
    assert cfg.device_token({"CREDENTIALS_DIRECTORY": str(tmp_path / "none")}) == ""
    assert cfg.device_token({}) == ""


def test_shipped_config_parses_with_the_new_keys():
    import tomllib
    from pathlib import Path

    data = tomllib.loads((Path(__file__).parent.parent / "services" / "config.toml").read_text())
    rt = cfg.parse(data).realtime
    assert rt.model == "gpt-realtime-2" and rt.reasoning_effort == "low"
