"""No long-lived key on the device: with ``[realtime] token_url`` it asks ``pivoice
token-server`` for a short-lived client secret before every session, rotations included."""

from __future__ import annotations

import pytest

from device.state import DeviceState
from device.tokenserver import TokenServer, TokenServerOptions, add_device

from .conftest import clip16k

REAL_KEY = "sk-real-key-held-by-the-token-server-only"


@pytest.fixture
async def token_setup(simulator_factory, tmp_path):
    sim = await simulator_factory(api_keys=frozenset({REAL_KEY}), session_limit_s=12)
    tokens = tmp_path / "device-tokens"
    kitchen = add_device(tokens, "kitchen")
    server = await TokenServer(TokenServerOptions(tokens_file=tokens, upstream=sim.http_url, api_key=REAL_KEY,
                                                  model="gpt-realtime", expires_s=60)).start()
    yield sim, server, kitchen
    await server.stop()


async def test_a_device_without_a_key_talks_through_the_token_server_across_a_rotation(device_factory, token_setup):
    sim, server, kitchen = token_setup
    device = await device_factory(realtime={"url": sim.url, "token_url": server.url}, key="", device_token=kitchen)
    app = device.app
    await device.wait_state(DeviceState.IDLE)
    assert app.status()["api_key"] == "short-lived secrets from the token server"
    device.mic.say(clip16k("goforward.raw"))
    first = await device.spoken_reply(0)
    assert "go forward ten meters" in first.data["text"].lower()
    await device.wait_for(lambda: app.manager.stats.rotations >= 1, "a rotation")
    n = device.count("reply")
    app.controls.say("What did I say before?")
    answer = await device.spoken_reply(n)
    assert "go forward ten meters" in answer.data["text"].lower()
    # each session was opened with a secret minted for it; the real key never left the server
    assert len(sim.secrets.minted) >= 2
    assert all(secret.startswith("ek_") for secret in sim.secrets.minted)
    assert REAL_KEY not in str(app.status())


async def test_an_unknown_device_token_is_an_error_state_not_a_loop(device_factory, token_setup):
    sim, server, _ = token_setup
    device = await device_factory(realtime={"url": sim.url, "token_url": server.url}, key="",
                                  device_token="not-a-token-of-this-house")
    app = device.app
    await device.wait_state(DeviceState.ERROR)
    status = app.status()
    assert status["link"] == "error" and "token" in status["last_error"].lower()
    assert "not-a-token-of-this-house" not in status["last_error"]
    assert sim.stats.connections == 0 and app.manager.stats.reconnects == 0
