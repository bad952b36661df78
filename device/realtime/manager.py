"""The session manager: one Realtime session after another, for weeks. It opens, rotates and
reconnects sessions and pumps the conversation core; nothing else.

Theory of operation.

* **Pump.** Server events, the pipeline's turn decisions and playback notices go into the
  conversation core (:mod:`device.realtime.conversation`, sans-I/O); the actions that come out
  are carried out here (:meth:`SessionManager._execute`): audio to the pipeline, tools as
  tasks, facts to the bus. Client events wait in the core's outbox; one sender task writes
  them to the live connection in order.
* **Connect**: open the WebSocket, configure it (``session.update``, wait for
  ``session.updated``), hand it the conversation so far, then let the sender write into it.
* **Rotate**: the limit is ``expires_at`` from ``session.created``, taken relative to when the
  session was created by *our* clock and trusted only when plausible (a Pi without a real-time
  clock before NTP, or a clock an hour fast, would otherwise say "expired"): else
  ``[realtime] session_limit``. ``margin`` before it the next session is opened in the
  background; the switch happens when the conversation is idle, or at the hard deadline.
* **Never a loop**: every new connection, whatever ended the last one (a failure, an expiry,
  a rotation), waits its turn in the full-jitter backoff unless the last session was healthy
  (lived at least ``healthy_s``); so no server answer and no clock can make the device spin.
* **Network loss**: the LEDs show offline (``link_down`` on the bus), backoff 0.5 s doubling
  to 30 s. **A bad key or a rejected setup** is the error state, retried after ``fatal_retry``
  or at once after a reload (SIGHUP).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from ..audio.pipeline import AudioPipeline
from ..errors import ConnectionLost, PivoiceError, SessionExpired, link_cause, should_retry
from ..pump import ConversationPump, ToolRunner
from ..redact import scrub
from . import events as ev
from .backoff import backoff
from .connection import Endpoint, RealtimeConnection
from .conversation import RealtimeConversation
from .opening import open_configured
from .session import SessionSettings
from .timing import Options, SessionStats, session_limit

__all__ = ["Options", "SessionManager", "SessionStats"]

logger = logging.getLogger(__name__)
TICK_S = 1.0




class SessionManager(ConversationPump):
    def __init__(self, *, endpoint: Callable[[], Endpoint], settings: Callable[[], SessionSettings],
                 conversation: RealtimeConversation, pipeline: AudioPipeline, run_tool: ToolRunner,
                 options: Options | None = None, publish: Callable[[str, dict[str, Any]], None] = lambda k, d: None,
                 credentials: Callable[[Endpoint], Awaitable[Endpoint]] | None = None,
                 clock: Callable[[], float] = time.monotonic, wall: Callable[[], float] = time.time,
                 rng: random.Random | None = None) -> None:
        super().__init__(conversation=conversation, pipeline=pipeline, run_tool=run_tool, publish=publish,
                         clock=clock)
        self.endpoint = endpoint
        #: before each session (rotations included): e.g. a short-lived client secret for the key
        self.credentials = credentials
        self.settings = settings
        self.options = options or Options()
        self.wall = wall
        self.rng = rng or random.Random()
        self.stats = SessionStats()
        self.conn: RealtimeConnection | None = None
        self._wake = asyncio.Event()         # reload, new conversation: stop waiting
        self._rotate_now = asyncio.Event()
        self._progress = asyncio.Event()      # the conversation may have become idle
        self._fresh = False                   # next session starts without carry-over
        self._hard_deadline, self.last_delay_s = 0.0, 0.0
        self.bad_frames: dict[str, int] = {}   # frames skipped (malformed), by kind, all sessions
        #: called with every server event before the conversation sees it (diagnostics, tests)
        self.observers: list[Callable[[ev.ServerEvent], None]] = []

    # ------------------------------------------------------------------ commands
    @property
    def connected(self) -> bool:
        return self.conn is not None

    def wake(self) -> None:
        """Stop waiting (backoff or error state) and try again now: after a config reload."""
        self._wake.set()

    def new_conversation(self) -> None:
        """Forget the conversation and continue in a fresh session (long hold, CLI, tool)."""
        self.conversation.new_conversation()
        self._fresh = True
        self._rotate_now.set()
        self._wake.set()

    def end_after_reply(self) -> None:
        self.conversation.end_after_reply()

    def say(self, text: str) -> None:
        """Inject a text turn; the device speaks the reply."""
        self._execute(self.conversation.say(text, self.clock()))

    def interrupt(self, cause: str) -> None:
        """Stop the reply now (button, new conversation); the conversation truncates it."""
        self.pipeline.interrupt(cause)

    def _executed(self) -> None:
        self._progress.set()   # the conversation may have become idle: the rotation waits for that

    # ---------------------------------------------------------------- the loop
    async def run(self) -> None:
        ticker = asyncio.get_running_loop().create_task(self._tick(), name="conversation-deadlines")
        try:
            await self._sessions()
        finally:
            ticker.cancel()
            for task in list(self._tool_tasks):
                task.cancel()

    async def _sessions(self) -> None:
        delays = self._delays()
        pending: RealtimeConnection | None = None
        last_start: float | None = None
        while True:
            try:
                if last_start is not None and self.clock() - last_start < self.options.healthy_s:
                    await self._wait_turn(delays, "the last session ended within seconds")
                elif last_start is not None:
                    delays = self._delays()
                if pending is None:
                    self.stats.link = "connecting"
                    pending = await self._open()
                conn, pending = pending, None
                last_start = self.clock()
                await self._start_conversation(conn)
                pending = await self._serve(conn)
            except asyncio.CancelledError:
                if pending is not None:
                    await pending.close()
                raise
            except (PivoiceError, OSError) as exc:
                pending = None
                if last_start is not None and self.clock() - last_start >= self.options.healthy_s:
                    delays = self._delays()   # it had been fine: start the backoff afresh
                await self._after_failure(exc, delays)
                last_start = None

    def _delays(self) -> Iterator[float]:
        return backoff(base_s=self.options.backoff_base_s, cap_s=self.options.backoff_cap_s, rng=self.rng)

    async def _wait_turn(self, delays: Iterator[float], why: str) -> None:
        delay = self.last_delay_s = next(delays)
        logger.warning("%s; waiting %.1f s before the next one", why, delay)
        self.stats.next_retry_at = self.clock() + delay
        await self._sleep(delay)

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(TICK_S)
            self._execute(self.conversation.tick(self.clock()))

    async def _after_failure(self, exc: BaseException, delays: Iterator[float]) -> None:
        phase, self.conn = "session" if self.conn is not None else "connect", None
        self._lose_session()
        message = scrub(str(exc), self.endpoint().api_key)
        self.stats.last_error, self.stats.last_error_at = message, self.wall()
        if not should_retry(exc):
            self.stats.link = "error"
            logger.error("%s", message, extra={"PIVOICE_ERROR": type(exc).__name__})
            self.publish("error", {"error": message, "fatal": True, "code": getattr(exc, "code", None)})
            self._link_down(exc, phase, message, self.options.fatal_retry_s, fatal=True)
            await self._sleep(self.options.fatal_retry_s)
            self.publish("link_down", {"cause": "retry", "error": message, "retry_in_s": 0.0})
            return
        if isinstance(exc, SessionExpired):
            # The server ended it before we rotated (a skewed clock, a failed rotation).
            self.stats.expired += 1
        delay = self.last_delay_s = next(delays)
        self.stats.link, self.stats.next_retry_at = "backoff", self.clock() + delay
        self.stats.reconnects += 1
        logger.warning("%s; retrying in %.1f s", message, delay)
        self._link_down(exc, phase, message, delay)
        self.publish("error", {"error": message, "fatal": False, "retry_in_s": round(delay, 2)})
        await self._sleep(delay)

    def _link_down(self, exc: BaseException, phase: str, message: str, retry_in_s: float, *,
                   fatal: bool = False) -> None:
        """Why (one word of a fixed set, for the metrics), the server's code, and whether it
        died while opening (a handshake failure) or in the session."""
        self.publish("link_down", {"cause": link_cause(exc), "code": getattr(exc, "code", None), "phase": phase,
                                   "error": message, "retry_in_s": round(retry_in_s, 2), "fatal": fatal})

    async def _sleep(self, seconds: float) -> None:
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):   # not wait_for: it can swallow a cancellation
                await self._wake.wait()
        self.stats.next_retry_at = None

    def _lose_session(self) -> None:
        """The link failed: stop the cut-off reply and the tools it asked for."""
        self._execute(self.conversation.end_session(lost=True, now=self.clock()))
        for task in list(self._tool_tasks):
            task.cancel()

    # ------------------------------------------------------------ one session
    async def _open(self) -> RealtimeConnection:
        endpoint = self.endpoint()
        if self.credentials is not None:
            endpoint = await self.credentials(endpoint)
        conn, created_at = await open_configured(endpoint, self.settings(), self.options, self.clock)
        session = conn.session
        assert session is not None
        conn.deadline = created_at + self._session_limit(session.expires_at)
        self.stats.connects += 1
        return conn

    def _session_limit(self, expires_at: float | None) -> float:
        limit, trusted = session_limit(expires_at, wall_now=self.wall(), fallback_s=self.options.session_limit_s)
        if not trusted:
            self.stats.clock_distrusted += 1
            logger.warning("the session expires in %.0f s by this device's clock, which is not plausible (is the "
                           "clock set? `timedatectl`); assuming [realtime] session_limit = %.0f s",
                           (expires_at or 0) - self.wall(), limit)
        return limit

    async def _start_conversation(self, conn: RealtimeConnection) -> None:
        """Make ``conn`` the current session: carry the conversation over, then go live."""
        fresh, self._fresh = self._fresh, False
        rotation = self.stats.session_id is not None and self.stats.link == "up"
        self._rotate_now.clear()
        session = conn.session
        assert session is not None
        first = self.conversation.begin_session(session_id=session.id or "?", fresh=fresh, now=self.clock(),
                                                settings=self.settings(), dialect=conn.endpoint.dialect,
                                                model=conn.endpoint.model)
        for event in first:
            await conn.send(event)
        self.conn = conn
        now = self.clock()
        self.stats.session_id = session.id
        self.stats.session_started = now
        self.stats.deadline = deadline = conn.deadline or now + self.options.session_limit_s
        margin = min(self.options.rotate_margin_s, max(1.0, (deadline - now) / 4))
        self.stats.rotate_at = deadline - margin
        self._hard_deadline = deadline - min(margin / 3, 5.0)
        self.stats.link = "up"
        self.stats.history = (self.stats.history + [session.id or "?"])[-20:]
        items, chars = self.conversation.carried
        logger.info("session %s live: %d carried item(s), digest %d chars, %.0f s to its limit",
                    session.id, items, chars, deadline - now, extra={"PIVOICE_SESSION_ID": session.id or ""})
        self.publish("session", {"session_id": session.id, "carried_items": items, "fresh": fresh,
                                 "rotation": rotation, "expires_in_s": round(deadline - now, 1)})

    async def _serve(self, conn: RealtimeConnection) -> RealtimeConnection:
        """Run ``conn`` until the next one is ready to take over (returned) or it fails (raised)."""
        sender = asyncio.create_task(self._send(conn), name="uplink")
        receiver = asyncio.create_task(self._receive(conn), name="downlink")
        rotator = asyncio.create_task(self._rotation(conn), name="rotation")
        tasks = {sender, receiver, rotator}
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            results = await asyncio.gather(*tasks, return_exceptions=True)
        await conn.close()
        if rotator in done and not rotator.cancelled() and rotator.exception() is None:
            self._execute(self.conversation.end_session(lost=False, now=self.clock()))
            self.stats.rotations += 1
            return rotator.result()
        for task, result in zip(tasks, results):
            if task in done and isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
                raise result
        raise ConnectionLost("the Realtime connection ended")

    async def _receive(self, conn: RealtimeConnection) -> None:
        try:
            async for event in conn:
                for observe in self.observers:
                    observe(event)
                self._execute(self.conversation.server_event(event, self.clock()))
        finally:
            for kind, count in conn.stats.bad_frames.items():
                self.bad_frames[kind] = self.bad_frames.get(kind, 0) + count

    async def _rotation(self, conn: RealtimeConnection) -> RealtimeConnection:
        deadline, hard, rotate_at = self.stats.deadline or 0.0, self._hard_deadline, self.stats.rotate_at or 0.0
        with contextlib.suppress(TimeoutError):
            # rotate_margin 0: no proactive rotation (the naive way: reconnect when it expires).
            wait = max(0.0, rotate_at - self.clock()) if self.options.rotate_margin_s > 0 else None
            async with asyncio.timeout(wait):
                await self._rotate_now.wait()
        urgent = self._rotate_now.is_set()
        logger.info("%s: opening the next session", "new conversation" if urgent and self._fresh else "rotation")
        nxt = await self._open_before(hard)
        try:
            while not urgent and not self.idle() and self.clock() < hard:
                self._progress.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(max(0.0, hard - self.clock())):
                        await self._progress.wait()
        except BaseException:
            await nxt.close()
            raise
        if not urgent and not self.idle():
            logger.warning("rotating in the middle of a turn: the session limit is %.1f s away",
                           deadline - self.clock())
            self.pipeline.interrupt("rotation")
        return nxt

    async def _open_before(self, hard: float) -> RealtimeConnection:
        """Open the next session; on failure try again until the hard deadline, then give up."""
        waits = self._delays()
        while True:
            try:
                return await self._open()
            except (PivoiceError, OSError) as exc:
                if not should_retry(exc) or self.clock() + 1.0 > hard:
                    raise
                logger.warning("opening the next session failed (%s); retrying", exc)
                await asyncio.sleep(min(next(waits), max(0.0, hard - self.clock())))

    def idle(self) -> bool:
        """Nobody talking, nothing playing, no reply or tool pending: a session may be swapped."""
        turns = self.pipeline.turns
        return (self.conversation.idle and not self.pipeline.speaking and not self._tool_tasks
                and not turns.talking and not turns.segmenter.in_speech)

    # -------------------------------------------------------------- status
    def _bad_frames_now(self) -> int:
        live = self.conn.stats.bad_frames_total if self.conn is not None else 0
        return sum(self.bad_frames.values()) + live

    def status(self) -> dict[str, Any]:
        return {**self.stats.report(self.clock()), "bad_frames": self._bad_frames_now(),
                **self.conversation.counters()}
