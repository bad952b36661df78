"""The Prometheus endpoint of a running device, scraped over HTTP and read with the library's
own parser: the counters follow what happened, the latencies hold the turns, the key is nowhere."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
import urllib.request
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from prometheus_client.parser import text_string_to_metric_families

from device import control
from device.config import MetricsConfig
from device.diag import doctor
from device.metrics import STATUS_COUNTERS
from device.state import DeviceState

from .conftest import clip16k

KEY = "sk-test-metrics-SECRET-0123456789abcdef"


class Scrape:
    def __init__(self, text: str) -> None:
        self.text = text
        self.samples = [s for family in text_string_to_metric_families(text) for s in family.samples]

    def value(self, name: str, **labels: str) -> float | None:
        for sample in self.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
        return None

    def total(self, name: str) -> float:
        return sum(s.value for s in self.samples if s.name == name)


async def scrape(app, url: str | None = None) -> Scrape:
    def get() -> str:
        with urllib.request.urlopen(url or app.metrics.url, timeout=10) as response:
            assert response.status == 200
            return response.read().decode()
    result = Scrape(await asyncio.to_thread(get))
    assert KEY not in result.text and "SECRET" not in result.text
    return result


async def status_json(app) -> dict:
    return await asyncio.to_thread(control.request, app.config.control.socket, {"cmd": "status"})


async def scraped_matches_status(app) -> bool:
    """Every counter the endpoint shares with `pivoice status --json` has the same value."""
    status, metrics = await status_json(app), await scrape(app)
    return all(metrics.value(f"pivoice_{name}_total") == status[key] for key, (name, _) in STATUS_COUNTERS.items())


async def poll(device, condition, what: str, timeout: float = 60.0) -> None:
    """Until the async ``condition()`` holds (no timing assertion: a generous deadline)."""
    deadline = time.monotonic() + timeout
    while not await condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}; state {device.app.machine.state}")
        await asyncio.sleep(0.1)


async def test_counters_and_latencies_follow_turns_a_barge_in_a_rotation_and_a_dropped_link(device_factory):
    device = await device_factory(sim_options={"session_limit_s": 12, "quirks": False}, metrics="127.0.0.1:0", key=KEY)
    app = device.app
    await device.wait_state(DeviceState.IDLE)
    assert app.status()["metrics"] == app.metrics.url
    first = await scrape(app)
    assert first.value("pivoice_state", pivoice_state="idle") == 1
    assert first.value("pivoice_link", pivoice_link="up") == 1
    assert first.value("pivoice_turns_total") == 0 and first.value("pivoice_turn_latency_seconds_count") == 0
    assert first.value("pivoice_forced_commits_total") == 0
    assert first.value("pivoice_build_info", model="gpt-realtime", dialect="ga") == 1
    assert first.value("process_resident_memory_bytes") > 0 and first.value("process_cpu_seconds_total") > 0
    assert first.value("pivoice_session_age_seconds") >= 0 and first.value("pivoice_session_rotation_in_seconds") > 0

    # A spoken turn, then a typed one (`pivoice say`, through the control socket).
    device.mic.say(clip16k("goforward.raw"))
    await device.spoken_reply(0)
    n = device.count("reply")
    said = await asyncio.to_thread(control.request, app.config.control.socket, {"cmd": "say", "text": "Hello there"})
    assert said["queued"] is True
    await device.spoken_reply(n)
    after_turns = await scrape(app)
    assert after_turns.value("pivoice_turns_total") == 1        # the typed one is not audio
    # the microphone's level: the spoken question was loud, the simulated room is -70 dBFS of noise
    # (the clip's padding is digital silence: the quietest may be none)
    assert after_turns.value("pivoice_microphone_loudest_dbfs") > -40
    assert after_turns.value("pivoice_microphone_no_signal_seconds") >= 0
    assert after_turns.value("pivoice_replies_total") >= 2
    assert after_turns.value("pivoice_turn_latency_seconds_count") == 2
    assert after_turns.value("pivoice_response_latency_seconds_count") == 2
    assert after_turns.value("pivoice_first_delta_to_speaker_seconds_count") >= 2
    assert after_turns.value("pivoice_turn_latency_seconds_sum") > 0
    assert after_turns.value("pivoice_uplink_audio_bytes_total") > 0
    assert after_turns.value("pivoice_downlink_audio_bytes_total") > 0

    # A barge-in: the person holds the button while the device speaks.
    device.mic.say(clip16k("numbers.raw"))
    await device.wait_state(DeviceState.SPEAKING)
    pin = device.pins.pin(17)
    pin.drive_low()
    await device.wait_for(lambda: app.status()["barge_ins"] == 1, "the barge-in")
    pin.drive_high()
    assert (await scrape(app)).value("pivoice_barge_ins_total") == 1

    # A rotation (the simulated limit is 12 s), then a dropped link.
    await device.wait_for(lambda: app.manager.stats.rotations >= 1, "a rotation")
    await device.wait_state(DeviceState.IDLE)
    rotated = await scrape(app)
    assert rotated.value("pivoice_session_rotations_total") >= 1
    assert rotated.value("pivoice_sessions_opened_total") >= 2
    await device.sim.drop_all()
    await device.wait_state(DeviceState.OFFLINE)
    await device.wait_state(DeviceState.IDLE)
    dropped = await scrape(app)
    assert dropped.value("pivoice_reconnects_total") == 1
    assert dropped.value("pivoice_link_down_total", cause="network") == 1
    assert dropped.total("pivoice_handshake_failures_total") == 0   # it died in a session, not opening one

    # One source: once the device is quiet, the endpoint and `pivoice status --json` agree.
    await poll(device, lambda: scraped_matches_status(app), "the endpoint to agree with the status")


async def test_the_endpoint_answers_in_error_and_offline_and_counts_why(device_factory):
    key = {"value": "sk-wrong-key-SECRET-1234567890"}
    device = await device_factory(sim_options={"api_keys": frozenset({KEY})}, key=lambda: key["value"],
                                  metrics="127.0.0.1:0")
    app = device.app
    await device.wait_state(DeviceState.ERROR)
    broken = await scrape(app)
    assert broken.value("pivoice_state", pivoice_state="error") == 1
    assert broken.value("pivoice_link", pivoice_link="error") == 1
    assert broken.value("pivoice_handshake_failures_total", code="invalid_api_key") == 1
    assert broken.value("pivoice_link_down_total", cause="auth") == 1

    key["value"] = KEY
    app.reload()
    await device.wait_state(DeviceState.IDLE)
    await device.sim.stop()
    await device.sim.drop_all()
    await device.wait_for(lambda: app.manager.stats.reconnects >= 3, "failed reconnects")
    offline = await scrape(app)
    assert offline.value("pivoice_state", pivoice_state="offline") == 1
    assert offline.value("pivoice_link", pivoice_link="backoff") == 1
    assert offline.value("pivoice_reconnect_in_seconds") is not None
    assert offline.value("pivoice_session_age_seconds") is None     # no session: no made-up age
    # The reconnects found the server gone: they failed opening a session.
    assert offline.total("pivoice_handshake_failures_total") >= 2
    assert offline.value("pivoice_link_down_total", cause="network") >= 3


class _Tools(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 - http.server's name
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if body["name"] == "check_weather":
            time.sleep(2.0)                      # longer than its timeout
        payload = b'{"forecast": "sunny"}'
        self.send_response(200)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


@pytest.fixture
def tool_service():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Tools)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/tool"
    server.shutdown()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_tool_calls_by_name_and_outcome_and_the_doctor_check(device_factory, tool_service):
    tools = [{"name": "check_weather", "description": "Weather", "url": tool_service, "timeout": 0.3},
             {"name": "order_pizza", "description": "Pizza", "url": f"http://127.0.0.1:{closed_port()}/x"}]
    device = await device_factory(tools=tools, metrics="127.0.0.1:0")
    app = device.app
    await device.wait_state(DeviceState.IDLE)
    for text in ("What is the time?", "Please check the weather", "Order a pizza"):
        n = device.count("reply")
        app.manager.say(text)
        await device.spoken_reply(n)
    calls = await scrape(app)
    assert calls.value("pivoice_tool_calls_total", tool="get_time", outcome="ok") == 1
    assert calls.value("pivoice_tool_calls_total", tool="check_weather", outcome="timeout") == 1
    assert calls.value("pivoice_tool_calls_total", tool="order_pizza", outcome="error") == 1
    assert calls.total("pivoice_tool_calls_total") == 3
    # Tool output and the person's words never reach the endpoint.
    assert "sunny" not in calls.text and "pizza" not in calls.text.replace("order_pizza", "")

    port = int(app.metrics.url.rsplit(":", 1)[1].split("/")[0])
    up = await asyncio.to_thread(doctor.check_metrics, replace(app.config, metrics=MetricsConfig(f"127.0.0.1:{port}")))
    assert up.result == "PASS" and "state idle" in up.detail
    down = await asyncio.to_thread(doctor.check_metrics,
                                   replace(app.config, metrics=MetricsConfig(f"127.0.0.1:{closed_port()}")))
    assert down.result == "WARN" and "does not answer" in down.detail and "pivoice status" in down.fix
    off = doctor.check_metrics(replace(app.config, metrics=MetricsConfig("")))
    assert off.result == "SKIP"


async def test_a_busy_port_costs_the_metrics_not_the_device(device_factory):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        device = await device_factory(metrics=f"127.0.0.1:{busy.getsockname()[1]}")
        await device.wait_state(DeviceState.IDLE)
        where = device.app.status()["metrics"]
        assert where.startswith("not serving: cannot listen on 127.0.0.1:") and device.app.metrics.url is None
