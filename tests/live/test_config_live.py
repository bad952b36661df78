"""[realtime] api = "live": the Live defaults, and clear errors naming the key."""

import pytest

from device.config import LIVE_MODEL, LIVE_URL, parse
from device.errors import ConfigError


def test_realtime_stays_the_default():
    rt = parse({}).realtime
    assert rt.api == "realtime" and rt.url == "wss://api.openai.com/v1/realtime" and rt.model == "gpt-realtime-2"


def test_live_brings_its_own_url_and_model_unless_set():
    rt = parse({"realtime": {"api": "live", "idle_close": 45}}).realtime
    assert (rt.api, rt.url, rt.model, rt.idle_close) == ("live", LIVE_URL, LIVE_MODEL, 45.0)
    azure = "wss://res.openai.azure.com/openai/v1/live/sessions"
    rt = parse({"realtime": {"api": "live", "url": azure, "model": "gpt-live-1.1"}}).realtime
    assert (rt.url, rt.model) == (azure, "gpt-live-1.1")


@pytest.mark.parametrize("table, key", [
    ({"api": "websocket"}, "[realtime] api"),
    ({"api": "live", "voice": "robot"}, "[realtime] voice"),
    ({"idle_close": 0}, "[realtime] idle_close"),
    ({"idle_close": "soon"}, "[realtime] idle_close"),
    ({"api": "live", "token_url": "https://home.lan/token"}, "[realtime] token_url"),
])
def test_bad_live_settings_name_the_key(table, key):
    with pytest.raises(ConfigError, match=key.replace("[", r"\[").replace("]", r"\]")):
        parse({"realtime": table}, source="/etc/pivoice/config.toml")


def test_the_continuous_turn_mode_is_not_a_realtime_setting():
    with pytest.raises(ConfigError, match=r"\[turns\] mode.*api = \"live\""):
        parse({"turns": {"mode": "continuous"}})
    assert parse({"realtime": {"api": "live", "delegation_model": "gpt-5"}}).realtime.delegation_model == "gpt-5"
