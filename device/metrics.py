"""Prometheus metrics: a text endpoint a home server scrapes (``[metrics] listen``).

Theory of operation.

* **Two sources, no double bookkeeping.** Counters the app already keeps (turns, replies,
  reconnects, underruns, audio bytes...) are read from ONE ``App.status()`` snapshot per scrape,
  so ``pivoice status --json`` and the endpoint cannot disagree. What needs timing or labels
  (turn latency, tool calls by name, link losses by cause, handshake failures by code) is fed
  by a consumer of the event bus into the library's Histograms and Counters.
* **A scrape never blocks the audio loop.** The library's HTTP server answers on its own daemon
  thread. The snapshot is taken ON the loop (``call_soon_threadsafe``: a dict, tens of
  microseconds, no locks shared with the audio path); if the loop does not answer within
  ``SNAPSHOT_WAIT_S`` the scrape serves the previous snapshot and says how old it is
  (``pivoice_status_age_seconds``), so the endpoint keeps answering even with a stuck loop.
* **Turn latency** is measured from the end of the person's turn (local end of speech that
  committed the turn, the server's commit in server-VAD mode, or a typed ``say``) to the first
  sample of the reply handed to the speaker (``playback_started``, timed on the writer thread).
  :class:`TurnTimer` is pure: the times are in the events.
* **Nothing secret, nothing unbounded.** No session ids, no text, never the key. Label values
  come from fixed sets (causes, outcomes) or are sanitised and capped (tool names the device
  declared, server error codes): past ``MAX_LABEL_VALUES`` they count as "other".
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypedDict

from prometheus_client import CollectorRegistry, Counter, Histogram, ProcessCollector, start_http_server
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    InfoMetricFamily,
    Metric,
    StateSetMetricFamily,
)

from .bus import BusEvent, EventBus
from .redact import scrub
from .state import DeviceState

logger = logging.getLogger(__name__)

SNAPSHOT_WAIT_S = 0.5
MAX_LABEL_VALUES = 20
TURN_BUCKETS = (0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0, 6.0, 10.0, 20.0)
SPEAKER_BUCKETS = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0, 2.0)
LINK_CAUSES = ("network", "expired", "closed", "auth", "setup")
TOOL_OUTCOMES = ("ok", "error", "timeout")
LINK_STATES = ("starting", "connecting", "up", "backoff", "error", "standby")   # standby: GPT-Live between sessions

#: status key -> (metric name without pivoice_ and _total, help). Counters since start.
STATUS_COUNTERS = {
    "turns": ("turns", "Turns the person took (audio committed to the server)"),
    "replies": ("replies", "Replies the server finished (response.done), spoken or not"),
    "barge_ins": ("barge_ins", "Times the device stopped speaking because it was interrupted"),
    "voice_barge_ins": ("voice_barge_ins", "Of those, a person the device itself heard talking over its reply"),
    "talk_over_dismissed": ("talk_over_dismissed", "Talk-overs the speaker went silent for that nobody went on "
                            "from (the echo canceller's leak): the reply played on"),
    "speaker_hushes": ("speaker_hushes", "Times the speaker's buffer was dropped to stop at once (a barge-in)"),
    "wake_words": ("wake_words", "Times the wake word was heard ([wake] word)"),
    "stop_words": ("stop_words", "Times the stop word stopped a reply ([wake] stop)"),
    "rotations": ("session_rotations", "Sessions replaced before their time limit"),
    "reconnects": ("reconnects", "Reconnects after a lost link (with backoff)"),
    "connects": ("sessions_opened", "Realtime sessions opened and configured"),
    "expired": ("sessions_expired", "Sessions the server ended at their limit before a rotation"),
    "text_only_fallbacks": ("text_only_fallbacks", "Carry-overs repaired after a text-only first reply"),
    "underruns": ("playback_underruns", "Times the speaker ran dry in the middle of a reply"),
    "overflows": ("microphone_overflows", "Microphone buffer overflows (audio lost: its reader was held up)"),
    "dropped_uplink_frames": ("uplink_dropped_frames", "Microphone frames dropped while the link was down or slow"),
    "audio_bytes_up": ("uplink_audio_bytes", "Audio queued for the server (PCM16 24 kHz), bytes"),
    "audio_bytes_down": ("downlink_audio_bytes", "Reply audio received from the server (PCM16 24 kHz), bytes"),
    "idle_closes": ("live_idle_closes", "GPT-Live sessions closed after idle_close seconds without speech"),
    "forced_commits": ("forced_commits", "server_vad turns the device committed: the server's VAD had not ended "
                                         "them 1.5 s after the device's (room noise above its threshold?)"),
}
#: status key -> (gauge name, help); absent when the status value is None (no session).
STATUS_GAUGES = {
    "session_age_s": ("session_age_seconds", "Age of the current Realtime session"),
    "rotation_in_s": ("session_rotation_in_seconds", "Time until the next session is opened (rotation)"),
    "next_retry_in_s": ("reconnect_in_seconds", "Time until the next connection attempt"),
    "billed_s": ("live_billed_seconds", "GPT-Live connected seconds the server counted (billed), since start"),
}

#: mic_level key (device/audio/miclevel.py) -> (gauge name, help); absent when None
MIC_LEVEL_GAUGES = {
    "loudest_dbfs": ("microphone_loudest_dbfs", "The loudest capture period of the last 10-20 s (RMS, dBFS)"),
    "quietest_dbfs": ("microphone_quietest_dbfs", "The quietest capture period of the last 10-20 s (RMS, dBFS)"),
    "no_signal_for_s": ("microphone_no_signal_seconds", "How long the microphone has delivered no signal (every "
                        "sample within 3 of 0); 60 and more: a capture switch or volume at 0?"),
}


@dataclass
class _Mark:
    at: float
    source: str              # "commit" (ours, before the server confirms), "server", "say"
    confirmed: bool = False
    responded: bool = False


@dataclass
class TurnTimer:
    """Pure: bus events in, (histogram, seconds) observations out."""

    mark: _Mark | None = None
    deltas: OrderedDict[str, float] = field(default_factory=OrderedDict)   # response id -> first delta at

    def feed(self, kind: str, at: float, data: dict[str, Any]) -> list[tuple[str, float]]:
        out: list[tuple[str, float]] = []
        if kind == "speech_ended" and data.get("committed"):
            self.mark = _Mark(at, "commit")
        elif kind == "say":
            self.mark = _Mark(at, "say")
        elif kind == "turn":
            # Our own commit echoed back is the same turn; otherwise the server ended it.
            if self.mark and self.mark.source == "commit" and not self.mark.confirmed:
                self.mark.confirmed = True
            else:
                self.mark = _Mark(at, "server")
        elif kind == "first_delta":
            self.deltas[str(data.get("response_id"))] = at
            while len(self.deltas) > 16:
                self.deltas.popitem(last=False)
            if self.mark and not self.mark.responded:
                self.mark.responded = True
                out.append(("response", at - self.mark.at))
        elif kind == "playback_started":
            delta_at = self.deltas.pop(str(data.get("response_id")), None)
            if delta_at is not None:
                out.append(("speaker", at - delta_at))
            if self.mark:
                out.append(("turn", at - self.mark.at))
                self.mark = None
        elif kind in ("link_down", "new_conversation"):
            self.mark = None
            self.deltas.clear()
        return [(name, seconds) for name, seconds in out if seconds >= 0]


class _Labels:
    """Label values from an open set, sanitised and capped so a series count stays small."""

    def __init__(self, limit: int = MAX_LABEL_VALUES) -> None:
        self.limit = limit
        self.seen: set[str] = set()

    def __call__(self, value: object) -> str:
        text = re.sub(r"[^a-z0-9_.-]", "_", scrub(str(value or "none")).lower())[:40]
        if text not in self.seen:
            if len(self.seen) >= self.limit:
                return "other"
            self.seen.add(text)
        return text


class _StatusCollector:
    """What the app's status says, one snapshot per scrape (a custom prometheus Collector)."""

    def __init__(self, metrics: Metrics) -> None:
        self.m = metrics

    def collect(self) -> Iterator[Metric]:
        snap = self.m.snapshot()
        status, health = snap["status"], snap["health"]
        for key, (name, doc) in STATUS_COUNTERS.items():
            if isinstance(status.get(key), int):
                yield CounterMetricFamily(f"pivoice_{name}", doc, value=status[key])
        for key, (name, doc) in STATUS_GAUGES.items():
            if isinstance(status.get(key), (int, float)):
                yield GaugeMetricFamily(f"pivoice_{name}", doc, value=status[key])
        level = status.get("mic_level") or {}
        for key, (name, doc) in MIC_LEVEL_GAUGES.items():
            if isinstance(level.get(key), (int, float)):
                yield GaugeMetricFamily(f"pivoice_{name}", doc, value=level[key])
        yield StateSetMetricFamily("pivoice_state", "The device state people see on the LEDs",
                                   value={str(s): str(s) == status.get("state") for s in DeviceState})
        yield StateSetMetricFamily("pivoice_link", "The Realtime link",
                                   value={s: s == status.get("link") for s in LINK_STATES})
        yield GaugeMetricFamily("pivoice_muted", "1 while the microphone is muted",
                                value=int(bool(status.get("muted"))))
        yield GaugeMetricFamily("pivoice_health_problems", "Problems that keep the systemd watchdog unfed "
                                "(stalled microphone or speaker, a dead link)", value=len(health))
        yield GaugeMetricFamily("pivoice_audio_device_problem", "1 while a microphone or speaker is missing or failing",
                                value=int(bool(status.get("audio_problem"))))
        yield GaugeMetricFamily("pivoice_gpio_problem", "1 when GPIO (LEDs, button) is unavailable",
                                value=int(bool(status.get("gpio_problem"))))
        yield GaugeMetricFamily("pivoice_status_age_seconds", "Age of the status snapshot served (grows if the "
                                "event loop does not answer)", value=max(0.0, time.monotonic() - snap["at"]))
        yield CounterMetricFamily("pivoice_metrics_events_lost", "Bus events the metrics consumer lost (too slow)",
                                  value=self.m.events_lost)
        yield InfoMetricFamily("pivoice_build", "Firmware version, API, model and dialect", value={
            k: scrub(str(v))[:64] for k, v in (("version", self.m.version), ("api", status.get("api", "realtime")),
                                                ("model", status.get("model")), ("dialect", status.get("dialect")))})


class Snapshot(TypedDict):
    """The app's status and health problems, and when (monotonic seconds) they were taken."""

    status: dict[str, Any]
    health: list[str]
    at: float


class Metrics:
    """The metrics of one app: the registry, the bus consumer and the HTTP endpoint."""

    def __init__(self, bus: EventBus, *, status: Callable[[], dict[str, Any]], health: Callable[[], list[str]],
                 tool_names: Callable[[], Iterable[str]] = tuple, version: str = "unknown") -> None:
        self.bus = bus
        self._status = status
        self._health = health
        self._tool_names = tool_names
        self.version = version
        self.registry = CollectorRegistry()
        self.timer = TurnTimer()
        self.events_lost = 0
        self.url: str | None = None
        self.problem: str | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._last: Snapshot | None = None
        self._server: Any = None
        self._codes = _Labels()
        self._errors = _Labels()
        self._build(self.registry)

    def _build(self, reg: CollectorRegistry) -> None:
        self.turn_latency = Histogram("pivoice_turn_latency_seconds", "End of the person's turn to the first reply "
                                      "sample handed to the speaker", buckets=TURN_BUCKETS, registry=reg)
        self.response_latency = Histogram("pivoice_response_latency_seconds", "End of the person's turn to the first "
                                          "reply audio from the server", buckets=TURN_BUCKETS, registry=reg)
        self.to_speaker = Histogram("pivoice_first_delta_to_speaker_seconds", "First reply audio received to its "
                                    "first sample handed to the speaker", buckets=SPEAKER_BUCKETS, registry=reg)
        self.tool_calls = Counter("pivoice_tool_calls", "Tool calls by tool and outcome (ok, error, timeout)",
                                  ["tool", "outcome"], registry=reg)
        self.link_down = Counter("pivoice_link_down", "Realtime links lost, by cause (network, expired, closed, "
                                 "auth, setup)", ["cause"], registry=reg)
        self.handshake_failures = Counter("pivoice_handshake_failures", "Sessions that failed to open, by error code",
                                          ["code"], registry=reg)
        self.server_errors = Counter("pivoice_server_errors", "Error events from the server in a session, by code",
                                     ["code"], registry=reg)
        for cause in LINK_CAUSES:
            self.link_down.labels(cause)
        ProcessCollector(registry=reg)   # process_cpu_seconds_total, process_resident_memory_bytes
        reg.register(_StatusCollector(self))

    # ----------------------------------------------------------------- the snapshot
    def _take(self) -> Snapshot:
        self._last = {"status": self._status(), "health": self._health(), "at": time.monotonic()}
        return self._last

    def snapshot(self) -> Snapshot:
        """The app's status, taken on the loop's thread (from any thread); stale if the loop hangs."""
        loop = self._loop
        if loop is None or threading.get_ident() == self._loop_thread:
            return self._take()
        done: concurrent.futures.Future[Snapshot] = concurrent.futures.Future()

        def take() -> None:
            try:
                done.set_result(self._take())
            except BaseException as exc:  # handed to the scraping thread
                done.set_exception(exc)
        try:
            loop.call_soon_threadsafe(take)
            return done.result(SNAPSHOT_WAIT_S)
        except Exception as exc:  # loop closed or stuck, status failed: the last one we have
            if self._last is None:
                raise
            logger.debug("metrics: serving the last status snapshot (%s)", exc.__class__.__name__)
            return self._last

    # ------------------------------------------------------------------ the consumer
    def handle(self, event: BusEvent) -> None:
        """One bus event: timings and labelled counts (on the loop, a few microseconds)."""
        kind, data = event.kind, event.data
        for name, seconds in self.timer.feed(kind, event.at, data):
            (self.turn_latency if name == "turn" else self.response_latency if name == "response"
             else self.to_speaker).observe(seconds)
        if kind == "tool_result":
            known = set(self._tool_names())
            tool = data.get("name") if data.get("name") in known else "unknown"
            outcome = data.get("outcome") if data.get("outcome") in TOOL_OUTCOMES else "error"
            self.tool_calls.labels(tool, outcome).inc()
        elif kind == "link_down":
            cause = data.get("cause") if data.get("cause") in LINK_CAUSES else "network"
            self.link_down.labels(cause).inc()
            if data.get("phase") == "connect":
                self.handshake_failures.labels(self._codes(data.get("code") or cause)).inc()
        elif kind == "error" and data.get("code"):
            self.server_errors.labels(self._errors(data["code"])).inc()

    async def run(self, address: tuple[str, int] | None) -> None:
        """Consume the bus for as long as the app runs; serve HTTP when ``address`` is set."""
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        sub = self.bus.subscribe(maxsize=2000)
        try:
            if address is not None:
                self.serve(*address)
            while True:
                event = await sub.get()
                self.events_lost = sub.dropped
                self.handle(event)
        finally:
            sub.close()
            await asyncio.to_thread(self.close)

    def serve(self, host: str, port: int) -> None:
        """Start the library's HTTP server on its daemon thread. A busy port is logged, not fatal."""
        try:
            self._server, _thread = start_http_server(port, addr=host, registry=self.registry)
        except OSError as exc:
            self.problem = f"cannot listen on {host}:{port}: {exc.strerror or exc}"
            logger.warning("metrics endpoint off: %s (another program uses the port? change [metrics] listen, "
                         "or set it to \"\" to turn metrics off)", self.problem)
            return
        bound = self._server.server_address[1]
        self.url = f"http://{'[' + host + ']' if ':' in host else host}:{bound}/metrics"
        logger.info("Prometheus metrics on %s", self.url)

    def where(self) -> str:
        """For the status: the URL, "off" or why it is not serving."""
        return self.url or (f"not serving: {self.problem}" if self.problem else "off")

    def close(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
            self.url = None


def for_app(app: Any) -> Metrics:
    """The metrics of :class:`device.app.App` (duck-typed: status, health, tools, bus)."""
    from importlib import metadata

    try:
        version = metadata.version("pivoice")
    except metadata.PackageNotFoundError:
        version = "unknown"
    return Metrics(app.bus, status=app.status, health=app.health,
                   tool_names=lambda: [t.name for t in app.tools.tools()], version=version)
