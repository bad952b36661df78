"""The metrics' pure parts: turn timing from events, bounded labels, the config key, and a
scrape that still answers when the event loop does not."""

from __future__ import annotations

import asyncio
import threading

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from device import config as cfg
from device.bus import BusEvent, EventBus
from device.errors import ConfigError
from device.metrics import MAX_LABEL_VALUES, Metrics, TurnTimer


def feed(timer: TurnTimer, *events: tuple[str, float, dict]) -> list[tuple[str, float]]:
    out = []
    for kind, at, data in events:
        out += timer.feed(kind, at, data)
    return [(name, round(seconds, 3)) for name, seconds in out]


def test_a_local_commit_is_timed_from_the_end_of_speech_not_the_servers_echo():
    timer = TurnTimer()
    got = feed(timer, ("speech_ended", 10.0, {"committed": True}), ("turn", 10.2, {}),
               ("first_delta", 10.9, {"response_id": "r1"}), ("playback_started", 11.0, {"response_id": "r1"}))
    assert got == [("response", 0.9), ("speaker", 0.1), ("turn", 1.0)]


def test_server_vad_turns_and_typed_turns():
    timer = TurnTimer()
    got = feed(timer, ("speech_ended", 5.0, {"committed": False}),     # the server decides, not us
               ("turn", 5.5, {}), ("first_delta", 6.0, {"response_id": "a"}), ("playback_started", 6.1, {"response_id": "a"}),
               ("say", 20.0, {}), ("first_delta", 20.4, {"response_id": "b"}), ("playback_started", 20.5, {"response_id": "b"}))
    assert got == [("response", 0.5), ("speaker", 0.1), ("turn", 0.6), ("response", 0.4), ("speaker", 0.1), ("turn", 0.5)]


def test_a_reply_without_a_turn_and_a_turn_lost_with_the_link():
    timer = TurnTimer()
    # A tool's follow-up reply: one turn, two responses; the turn is timed once, at the first sound.
    got = feed(timer, ("say", 1.0, {}), ("first_delta", 2.0, {"response_id": "x"}),
               ("playback_started", 2.1, {"response_id": "x"}),
               ("first_delta", 5.0, {"response_id": "y"}), ("playback_started", 5.2, {"response_id": "y"}))
    assert got == [("response", 1.0), ("speaker", 0.1), ("turn", 1.1), ("speaker", 0.2)]
    # The link drops after the turn: the reply after the reconnect is not this turn's.
    got = feed(timer, ("turn", 10.0, {}), ("link_down", 11.0, {"cause": "network"}),
               ("first_delta", 30.0, {"response_id": "z"}), ("playback_started", 30.1, {"response_id": "z"}))
    assert got == [("speaker", 0.1)]


def test_the_latest_turn_wins_over_one_that_got_no_reply():
    timer = TurnTimer()
    got = feed(timer, ("turn", 1.0, {}), ("turn", 60.0, {}), ("first_delta", 60.5, {"response_id": "r"}),
               ("playback_started", 60.6, {"response_id": "r"}))
    assert got[-1] == ("turn", 0.6)


def scrape(metrics: Metrics) -> dict[str, list]:
    families = text_string_to_metric_families(generate_latest(metrics.registry).decode())
    return {s.name + str(sorted(s.labels.items())): s.value for f in families for s in f.samples}


def make(status: dict | None = None, tools=("get_time",)) -> Metrics:
    state = {"state": "idle", "link": "up", "turns": 3, "model": "gpt-realtime", "dialect": "ga", **(status or {})}
    return Metrics(EventBus(), status=lambda: dict(state), health=lambda: [], tool_names=lambda: tools)


def test_labels_stay_bounded_and_never_carry_a_key():
    metrics = make()
    metrics.handle(BusEvent("tool_result", 0, {"name": "made_up_by_the_model", "output": "secret", "outcome": "ok"}))
    metrics.handle(BusEvent("tool_result", 0, {"name": "get_time", "outcome": "weird"}))
    for i in range(MAX_LABEL_VALUES + 5):
        metrics.handle(BusEvent("error", 0, {"code": f"code_{i}", "error": "text"}))
    metrics.handle(BusEvent("link_down", 0, {"cause": "auth", "code": "sk-abc123secret", "phase": "connect"}))
    samples = scrape(metrics)
    assert samples["pivoice_tool_calls_total[('outcome', 'ok'), ('tool', 'unknown')]"] == 1
    assert samples["pivoice_tool_calls_total[('outcome', 'error'), ('tool', 'get_time')]"] == 1
    codes = [k for k in samples if k.startswith("pivoice_server_errors_total")]
    assert len(codes) == MAX_LABEL_VALUES + 1
    assert samples["pivoice_server_errors_total[('code', 'other')]"] == 5
    assert samples["pivoice_handshake_failures_total[('code', '_key_')]"] == 1
    assert "abc123secret" not in generate_latest(metrics.registry).decode()


async def test_a_stuck_loop_gets_the_last_snapshot_not_a_hung_scrape():
    state = {"state": "idle", "link": "up", "turns": 1}
    metrics = Metrics(EventBus(), status=lambda: dict(state), health=lambda: [])
    metrics._take()
    state["turns"] = 2
    metrics._loop = asyncio.new_event_loop()   # never runs: like a loop stuck in a blocking call
    try:
        samples = await asyncio.to_thread(scrape, metrics)
    finally:
        metrics._loop.close()
    assert samples["pivoice_turns_total[]"] == 1                        # the last good snapshot
    assert samples["pivoice_status_age_seconds[]"] > 0


async def test_the_snapshot_is_taken_on_the_loop():
    threads = []
    metrics = Metrics(EventBus(), status=lambda: threads.append(threading.get_ident()) or {"state": "idle", "turns": 7},
                      health=lambda: [])
    task = asyncio.create_task(metrics.run(None))
    await asyncio.sleep(0)
    samples = await asyncio.to_thread(scrape, metrics)       # from another thread, like the HTTP server
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert samples["pivoice_turns_total[]"] == 7
    assert threads == [threading.get_ident()]                # the loop's thread, not the scraper's
    assert samples["pivoice_state[('pivoice_state', 'idle')]"] == 1


@pytest.mark.parametrize("listen, address", [("127.0.0.1:9101", ("127.0.0.1", 9101)), ("", None),
                                             ("[::1]:9101", ("::1", 9101)), ("0.0.0.0:0", ("0.0.0.0", 0))])
def test_metrics_listen_is_host_and_port(listen, address):
    assert cfg.parse({"metrics": {"listen": listen}}).metrics.address == address


@pytest.mark.parametrize("listen", ["9101", ":9101", "localhost:port", "127.0.0.1:70000", 9101])
def test_a_bad_listen_says_what_is_expected(listen):
    with pytest.raises(ConfigError, match=r"\[metrics\] listen"):
        cfg.parse({"metrics": {"listen": listen}})


def test_metrics_are_on_for_localhost_by_default():
    assert cfg.Config().metrics.address == ("127.0.0.1", 9101)
    with pytest.raises(ConfigError, match="unknown key"):
        cfg.parse({"metrics": {"port": 9101}})
