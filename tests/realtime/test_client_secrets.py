"""No long-lived key on the device: ``pivoice token-server`` mints client secrets from the
simulator's ``POST /v1/realtime/client_secrets`` on loopback, and the device opens sessions
with them (reference section 3.1). Real sockets throughout; the simulator's clock is an input."""

from __future__ import annotations

import json
import logging
import os

import pytest
from websockets.asyncio.client import connect

from device.errors import AuthenticationError, ConfigError, ConnectionLost, ServerError, should_retry
from device.httpjson import post_json
from device.realtime import events as ev
from device.realtime.connection import Endpoint, RealtimeConnection
from device.realtime.models import Item
from device.realtime.secrets import ClientSecret, fetch_client_secret
from device.tokenserver import TokenServer, TokenServerOptions, add_device, revoke_device

REAL_KEY = "sk-real-key-held-by-the-server-0001"
T0 = 1_800_000_000.0


@pytest.fixture
def clock():
    now = [T0]
    return now


@pytest.fixture
async def sim(simulator_factory, clock):
    return await simulator_factory(api_keys=frozenset({REAL_KEY}), clock=lambda: clock[0])


@pytest.fixture
def tokens(tmp_path):
    path = tmp_path / "device-tokens"
    kitchen = add_device(path, "kitchen")
    hall = add_device(path, "hall")
    return path, {"kitchen": kitchen, "hall": hall}


@pytest.fixture
async def token_server(sim, tokens):
    server = await TokenServer(TokenServerOptions(tokens_file=tokens[0], upstream=sim.http_url, api_key=REAL_KEY,
                                                  model="gpt-realtime-2", expires_s=60)).start()
    yield server
    await server.stop()


async def open_with(sim, secret: ClientSecret, model="gpt-realtime-2") -> RealtimeConnection:
    return await RealtimeConnection.open(Endpoint(url=sim.url, model=model, api_key=secret.value), ping_interval_s=None)


async def test_a_known_device_gets_a_secret_that_opens_sessions(sim, tokens, token_server, caplog):
    caplog.set_level(logging.DEBUG, logger="device")  # (websockets itself logs headers at DEBUG)
    secret = await fetch_client_secret(token_server.url, tokens[1]["kitchen"], timeout_s=10)
    assert secret.value.startswith("ek_") and secret.expires_at == T0 + 60
    assert secret.value not in repr(secret)
    assert sim.secrets.minted[secret.value].session == {"type": "realtime", "model": "gpt-realtime-2"}
    for _ in range(2):  # one secret may start several sessions (a rotation) until it expires
        conn = await open_with(sim, secret)
        assert conn.session.model == "gpt-realtime-2" and conn.session.id.startswith("sess_")
        await conn.send(ev.ItemCreate(item=Item.user_text("hello")))
        await conn.send(ev.ResponseCreate())
        while not isinstance(event := await conn.recv(), ev.ResponseDone):
            pass
        assert event.response.status == "completed"
        await conn.close()
    # each device is named in the log; no token, key or secret is
    assert "kitchen" in caplog.text
    for secret_text in (tokens[1]["kitchen"], REAL_KEY, secret.value):
        assert secret_text not in caplog.text


async def test_unknown_and_revoked_tokens_are_refused_with_a_fix(sim, tokens, token_server):
    status, body = await post_json(token_server.url, {}, bearer="not-a-device-token-at-all", timeout_s=10)
    assert status == 401 and body["error"]["code"] == "unknown_device_token"
    with pytest.raises(AuthenticationError) as refused:
        await fetch_client_secret(token_server.url, "not-a-device-token-at-all", timeout_s=10)
    assert "refused this device's token (HTTP 401)" in str(refused.value)
    assert "tokens file" in refused.value.fix and not should_retry(refused.value)

    assert (await fetch_client_secret(token_server.url, tokens[1]["hall"], timeout_s=10)).value
    assert revoke_device(tokens[0], "hall")
    assert oct(os.stat(tokens[0]).st_mode & 0o777) == "0o600"
    with pytest.raises(AuthenticationError):
        await fetch_client_secret(token_server.url, tokens[1]["hall"], timeout_s=10)
    assert (await fetch_client_secret(token_server.url, tokens[1]["kitchen"], timeout_s=10)).value
    with pytest.raises(AuthenticationError, match="no device token"):
        await fetch_client_secret(token_server.url, "", timeout_s=10)


async def test_an_expired_secret_is_refused_like_a_bad_key(sim, tokens, token_server, clock):
    secret = await fetch_client_secret(token_server.url, tokens[1]["kitchen"], timeout_s=10)
    clock[0] = secret.expires_at  # the secret's life is over: no new session may start
    with pytest.raises(AuthenticationError) as refused:
        await open_with(sim, secret)
    assert refused.value.code == "invalid_api_key" and secret.value not in str(refused.value)
    headers = {"Authorization": f"Bearer {secret.value}"}
    async with connect(f"{sim.url}?model=gpt-realtime-2", additional_headers=headers) as ws:
        first = json.loads(await ws.recv())
        assert first["type"] == "error" and first["error"]["type"] == "invalid_request_error"
        assert first["error"]["code"] == "invalid_api_key" and first["error"]["message"].startswith(
            "Incorrect API key provided: ek_")
        await ws.wait_closed()
        assert ws.close_code == 3000
    fresh = await fetch_client_secret(token_server.url, tokens[1]["kitchen"], timeout_s=10)
    await (await open_with(sim, fresh)).close()


async def test_server_side_failures_are_retryable_and_say_whose(sim, tokens):
    path, known = tokens
    bad_key = await TokenServer(TokenServerOptions(tokens_file=path, upstream=sim.http_url,
                                                   api_key="sk-wrong-key-000000000")).start()
    gone = bad_key.url  # a port nobody listens on once this server stops
    try:
        with pytest.raises(ServerError) as upstream:
            await fetch_client_secret(bad_key.url, known["kitchen"], timeout_s=10)
        assert upstream.value.code == "upstream_refused_key" and should_retry(upstream.value)
        assert "sk-wrong" not in str(upstream.value)
    finally:
        await bad_key.stop()
    with pytest.raises(ConnectionLost) as unreachable:
        await fetch_client_secret(gone, known["kitchen"], timeout_s=5)
    assert "cannot reach the token server" in str(unreachable.value) and should_retry(unreachable.value)


async def test_tokens_file_must_be_private(sim, tokens):
    path, known = tokens
    path.chmod(0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        await TokenServer(TokenServerOptions(tokens_file=path, upstream=sim.http_url, api_key=REAL_KEY)).start()
    path.chmod(0o600)
    server = await TokenServer(TokenServerOptions(tokens_file=path, upstream=sim.http_url, api_key=REAL_KEY)).start()
    try:
        path.chmod(0o640)  # opened up while running: every device is refused until it is fixed
        status, body = await post_json(server.url, {}, bearer=known["kitchen"], timeout_s=10)
        assert status == 503 and body["error"]["code"] == "tokens_file_unusable"
    finally:
        await server.stop()


async def test_simulator_mint_endpoint_checks_like_the_api(sim):
    url = sim.http_url + "/realtime/client_secrets"
    status, body = await post_json(url, {"expires_after": {"anchor": "created_at", "seconds": 5},
                                         "session": {"type": "realtime", "model": "gpt-realtime-2"}},
                                   bearer=REAL_KEY, timeout_s=10)
    assert status == 400 and body["error"]["code"] == "integer_below_min_value"
    assert body["error"]["param"] == "expires_after.seconds"
    status, body = await post_json(url, {"session": {"model": "gpt-realtime-2"}}, bearer=REAL_KEY, timeout_s=10)
    assert status == 400 and body["error"]["param"] == "session.type"
    status, body = await post_json(url, {}, bearer="sk-not-the-key-0000", timeout_s=10)
    assert status == 401 and body["error"]["code"] == "invalid_api_key"
    status, body = await post_json(url, {"session": {"type": "realtime", "model": "gpt-realtime-1.5",
                                                     "instructions": "Be brief."}}, bearer=REAL_KEY, timeout_s=10)
    assert status == 200 and body["expires_at"] == T0 + 600 and body["session"]["instructions"] == "Be brief."
    status, _ = await post_json(url, {}, bearer=body["value"], timeout_s=10)
    assert status == 401  # a client secret cannot mint more secrets
    # the secret's session configuration applies to the session it starts, model included
    conn = await RealtimeConnection.open(Endpoint(url=sim.url, model="gpt-realtime-1.5", api_key=body["value"]),
                                         ping_interval_s=None)
    assert conn.session.instructions == "Be brief." and conn.session.model == "gpt-realtime-1.5"
    await conn.close()
