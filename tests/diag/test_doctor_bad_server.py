"""``pivoice doctor``'s handshake check against a server whose session.created is malformed."""

import json

import pytest
from websockets.asyncio.server import serve

from device import config as cfg
from device.diag import doctor

SESSION = {"type": "session.created", "session": {"id": "sess_x", "model": "gpt-realtime", "expires_at": 9e9,
                                                  "audio": {"input": "pcm16"}}}


async def handshake_against(first: dict, monkeypatch) -> doctor.Check:
    async def handler(ws):
        await ws.send(json.dumps(first))
        await ws.wait_closed()

    monkeypatch.setenv("OPENAI_API_KEY", "sk-doctor-test")
    async with serve(handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        config = cfg.parse({"realtime": {"url": f"ws://127.0.0.1:{port}"}})
        return await doctor._handshake(config)


async def test_doctor_passes_a_session_whose_audio_input_is_a_string(monkeypatch):
    check = await handshake_against(SESSION, monkeypatch)
    assert check.result == "PASS" and "sess_x" in check.detail


@pytest.mark.parametrize("session", [42, "text", [1, 2], None])
async def test_doctor_fails_with_a_message_when_session_is_not_an_object(session, monkeypatch):
    check = await handshake_against({"type": "session.created", "session": session}, monkeypatch)
    assert check.result == "FAIL" and "first frame is unusable" in check.detail
    assert "sk-doctor-test" not in check.detail + check.fix
