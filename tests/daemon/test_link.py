"""Network loss, a bad key, a slow tool: the device recovers or says clearly what is wrong."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from device.state import DeviceState

from .conftest import clip16k


async def test_network_drop_in_the_middle_of_a_reply_recovers(device_factory):
    device = await device_factory()
    app = device.app
    await device.wait_state(DeviceState.IDLE)
    device.mic.say(clip16k("goforward.raw"))
    await device.wait_state(DeviceState.SPEAKING)
    await device.sim.drop_all()

    await device.wait_state(DeviceState.OFFLINE)
    assert not app.pipeline.speaking          # the cut-off reply stopped at once
    await device.wait_state(DeviceState.IDLE)  # and the device came back by itself
    assert app.manager.stats.reconnects == 1
    assert app.manager.stats.link == "up"
    offline = device.of("state", state="offline")[0]
    assert "closed" in offline.data["error"] or "lost" in offline.data["error"]

    # The conversation survived the drop.
    n = device.count("reply")
    app.manager.say("What did I say before?")
    reply = await device.spoken_reply(n)
    assert reply.data["text"] == "Earlier you said: go forward ten meters."


async def test_a_dead_server_means_offline_and_backoff_not_a_hammer(device_factory):
    device = await device_factory()
    app = device.app
    await device.wait_state(DeviceState.IDLE)
    await device.sim.stop()
    await device.sim.drop_all()
    await device.wait_for(lambda: app.manager.stats.reconnects >= 4, "four failed reconnects")
    assert app.machine.state is DeviceState.OFFLINE
    delays = [e.data["retry_in_s"] for e in device.of("error") if "retry_in_s" in e.data]
    # Full jitter under a doubling ceiling: 0.5, 1, 2, 4 s.
    for attempt, delay in enumerate(delays[:4]):
        assert 0 <= delay <= 0.5 * 2 ** attempt
    status = app.status()
    assert status["link"] == "backoff" and status["next_retry_in_s"] is not None
    # The microphone keeps running; what queues up for the server is bounded.
    device.mic.say(clip16k("goforward.raw", pad_ms=3000))
    await device.mic.wait_said()
    assert app.conversation.outbox.audio_frames <= 2000 // 20 + 5


async def test_bad_key_is_an_error_state_not_a_reconnect_loop(device_factory):
    key = {"value": "sk-wrong-key-1234567890"}
    device = await device_factory(sim_options={"api_keys": frozenset({"sk-good-key-0987654321"})},
                                  key=lambda: key["value"])
    app = device.app
    await device.wait_state(DeviceState.ERROR)
    status = app.status()
    assert status["link"] == "error"
    assert "rejected the API key" in status["last_error"]
    assert "OPENAI_API_KEY" in status["last_error"]          # says how to fix it
    assert "sk-wrong" not in json.dumps(status)              # never the key
    assert app.manager.stats.reconnects == 0
    assert device.sim.stats.connections == 1
    # The admin fixes the key and reloads (SIGHUP): the device comes up at once.
    key["value"] = "sk-good-key-0987654321"
    app.reload()
    await device.wait_state(DeviceState.IDLE)
    assert device.sim.stats.connections == 2


async def test_rejected_dialect_is_an_error_with_the_fix(device_factory):
    device = await device_factory(realtime={"dialect": "beta"})
    await device.wait_state(DeviceState.ERROR)
    assert 'dialect = "ga"' in device.app.status()["last_error"]


class _SlowService(BaseHTTPRequestHandler):
    requests: list = []
    #: check_weather answers only once this is set (the test's end): slower than any timeout
    released = threading.Event()

    def do_POST(self):  # noqa: N802 - http.server's name
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        _SlowService.requests.append(body)
        if body["name"] == "check_weather":
            _SlowService.released.wait(60)
        payload = json.dumps({"forecast": "sunny"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


@pytest.fixture
def slow_service():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _SlowService)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _SlowService.released.clear()
    yield f"http://127.0.0.1:{server.server_address[1]}/tool"
    _SlowService.released.set()
    server.shutdown()


async def test_slow_tool_times_out_and_the_model_hears_why(device_factory, slow_service):
    tools = [{"name": "check_weather", "description": "Weather at home", "url": slow_service, "timeout": 0.5},
             {"name": "order_pizza", "description": "Orders a pizza", "url": slow_service, "timeout": 5}]
    device = await device_factory(tools=tools)
    app = device.app
    await device.wait_state(DeviceState.IDLE)
    app.manager.say("Please check the weather")
    reply = await device.spoken_reply(0)
    assert "did not answer within 0.5 s" in reply.data["text"]
    outputs = [i for i in device.sim.stats.sessions[0].items if i["type"] == "function_call_output"]
    assert json.loads(outputs[0]["output"]) == {"error": "the tool did not answer within 0.5 s"}
    assert app.machine.state is DeviceState.IDLE

    n = device.count("reply")
    app.manager.say("Order a pizza")
    reply = await device.spoken_reply(n)
    assert reply.data["text"] == "Done. The result is forecast sunny."
    assert _SlowService.requests[-1] == {"name": "order_pizza", "arguments": {}}


async def test_built_in_tools_change_the_device(device_factory):
    device = await device_factory()
    app = device.app
    await device.wait_state(DeviceState.IDLE)
    app.manager.say("Set the volume to 30")
    await device.spoken_reply(0)
    assert app.status()["volume"] == 30
    assert app.pipeline.gain == pytest.approx(0.09)
    n = device.count("reply")
    app.manager.say("What is the time?")
    reply = await device.spoken_reply(n)
    assert reply.data["text"].startswith("Done. The result is time ")
    n = device.count("reply")
    app.manager.say("Mute the microphone please")
    await device.spoken_reply(n)
    await device.wait_state(DeviceState.MUTED)
    assert app.turns.muted
