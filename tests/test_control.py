"""The control socket under abuse: floods of idle clients, long lines, many subscribers,
shutdown with a subscriber attached. A real ControlServer on a real Unix socket."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket

import pytest

from device import control
from device.bus import BusEvent, EventBus


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.fixture
async def server_factory(tmp_path):
    servers: list[control.ControlServer] = []

    async def start(commands=None, **limits) -> control.ControlServer:
        path = tmp_path / f"c{len(servers)}.sock"
        commands = commands or {"status": lambda req: {"state": "idle"}}
        server = control.ControlServer(str(path), EventBus(), commands, **limits)
        await server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.close()


def raw(path, data: bytes | None = None) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(str(path))
    if data is not None:
        sock.sendall(data)
    return sock


def read_line(sock: socket.socket) -> dict:
    sock.settimeout(30)
    buf = b""
    while not buf.endswith(b"\n"):
        chunk = sock.recv(4096)
        if not chunk:
            break
        buf += chunk
    return json.loads(buf) if buf else {}


async def until(predicate, what: str) -> None:
    for _ in range(3000):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never happened: {what}")


async def test_status_answers_through_a_flood_of_idle_connections_and_descriptors_stay_bounded(server_factory):
    server = await server_factory(max_clients=32)
    before = open_fds()
    # connected from a thread: the server's accept loop must keep running meanwhile
    idle = await asyncio.to_thread(lambda: [raw(server.path) for _ in range(300)])
    await until(lambda: server.stats.evicted >= 300 - 32, "the oldest idle connections evicted")
    status = await asyncio.to_thread(control.request, str(server.path), {"cmd": "status"})
    assert status == {"ok": True, "state": "idle"}
    # server side: at most the cap of open connections (the test holds the 300 client ends)
    await until(lambda: open_fds() - len(idle) <= before + 32 + 2, "evicted connections closed")
    assert open_fds() - len(idle) <= before + 32 + 2
    evicted = read_line(idle[0])
    assert evicted["ok"] is False and "too many connections" in evicted["error"]
    for sock in idle:
        sock.close()


async def test_a_client_that_sends_nothing_is_timed_out(server_factory):
    server = await server_factory(request_timeout_s=0.2)
    sock = raw(server.path)
    reply = await asyncio.to_thread(read_line, sock)
    assert reply["ok"] is False and "no request within 0.2 s" in reply["error"]
    assert await asyncio.to_thread(sock.recv, 10) == b""  # and closed
    assert server.stats.timed_out == 1
    sock.close()


async def test_a_line_over_the_cap_is_refused(server_factory):
    server = await server_factory()
    sock = raw(server.path, b"x" * (control.MAX_REQUEST + 10) + b"\n")
    reply = await asyncio.to_thread(read_line, sock)
    assert reply["ok"] is False and "longer than" in reply["error"] and server.stats.bad_requests == 1
    sock.close()
    assert (await asyncio.to_thread(control.request, str(server.path), {"cmd": "status"}))["ok"]


@pytest.mark.parametrize("line", [b"[1]\n", b"{nope\n", b"[" * 60_000 + b"\n", b"\xff\xfe\n"])
async def test_garbage_requests_get_an_error_line(server_factory, line):
    server = await server_factory()
    sock = raw(server.path, line)
    reply = await asyncio.to_thread(read_line, sock)
    assert reply["ok"] is False and "bad request" in reply["error"]
    sock.close()


async def test_busy_when_every_slot_runs_a_command(server_factory):
    release = asyncio.Event()

    async def slow(req):
        await release.wait()
        return {}

    server = await server_factory({"status": lambda req: {}, "slow": slow}, max_clients=3)
    running = await asyncio.to_thread(lambda: [raw(server.path, b'{"cmd": "slow"}\n') for _ in range(3)])
    await until(lambda: len(server._clients) == 3 and not server._idle, "three commands running")
    reply = await asyncio.to_thread(control.request, str(server.path), {"cmd": "status"})
    assert reply["ok"] is False and reply["error"].startswith("busy") and server.stats.refused_busy == 1
    release.set()
    assert [(await asyncio.to_thread(read_line, s))["ok"] for s in running] == [True] * 3
    for sock in running:
        sock.close()


async def test_subscribers_are_exempt_from_the_timeout_but_bounded(server_factory):
    server = await server_factory(request_timeout_s=0.1, max_streams=2)
    streams = [await asyncio.to_thread(control.EventStream, str(server.path)) for _ in range(2)]
    with pytest.raises(control.DaemonUnreachable, match="busy: 2 event streams"):
        await asyncio.to_thread(control.EventStream, str(server.path))
    await asyncio.sleep(0.3)  # three request timeouts: a subscriber is not an idle client
    server.bus.publish(BusEvent("state", 1.0, {"state": "idle"}))
    got = [await asyncio.to_thread(next, iter(s)) for s in streams]
    assert [g["state"] for g in got] == ["idle", "idle"] and server.stats.timed_out == 0
    for stream in streams:
        stream.close()


async def test_an_acknowledged_stream_sees_an_event_published_right_after(server_factory):
    server = await server_factory()
    stream = await asyncio.to_thread(control.EventStream, str(server.path))
    server.bus.publish(BusEvent("reply", 2.0, {"text": "fast"}))  # no pause: the ack means subscribed
    assert (await asyncio.to_thread(next, iter(stream)))["text"] == "fast"
    stream.close()


async def test_close_with_a_subscriber_attached_logs_no_error(server_factory, caplog):
    caplog.set_level(logging.DEBUG)
    server = await server_factory()
    stream = await asyncio.to_thread(control.EventStream, str(server.path))
    idle = raw(server.path)
    await server.close()
    await asyncio.sleep(0.05)  # let asyncio run the connection callbacks that used to log
    assert await asyncio.to_thread(lambda: list(stream)) == []  # the stream just ends
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
    stream.close()
    idle.close()


async def test_mute_and_talk_flags_must_be_booleans_before_sending():
    for bad in ({"cmd": "mute", "muted": "false"}, {"cmd": "talk", "on": 1}, {"cmd": "say", "text": " "}):
        with pytest.raises(control.BadRequest):
            control.request("/nonexistent/socket", bad)
    with pytest.raises(control.DaemonUnreachable):  # a good request goes on to connect
        control.request("/nonexistent/socket", {"cmd": "mute", "muted": False})
