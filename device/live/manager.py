"""The GPT-Live session manager: connect on demand, because every connected second is billed.

Theory of operation. The same public surface as :class:`device.realtime.manager.SessionManager`
(the app, the controls and the pipeline cannot tell them apart), a different life:

* **No session while idle.** A session opens when it is asked for (:meth:`open_on_demand`: the
  button, ``say``, the wake word; or local speech, through the conversation's ``OpenSession``).
  From that moment the microphone streams into the outbox, the ring-buffer pre-roll first, so
  what was said while connecting reaches the model (bounded to ``max_queue_ms``).
* **Idle close.** The conversation core says ``CloseSession("idle")`` after ``idle_close``
  seconds without speech either way; the manager sends ``session.close``, waits for
  ``session.closed`` and publishes ``standby`` (the LEDs show idle: the device is ready).
* **Expiry.** ``session.closed`` ``expired`` (SessionExpired) opens the next session at once,
  with the conversation so far as ``input``; the audio queued meanwhile goes to it.
* **Errors** as for Realtime (:mod:`device.errors`): a refused key or model is the error state
  with its fix, retried only after ``fatal_retry`` or a reload; a dropped link backs off with
  full jitter and retries while a session is wanted; a session that ended within ``healthy_s``
  makes the next one wait its turn, so nothing can make the device spin.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Iterator
from typing import Any

from ..audio.pipeline import AudioPipeline
from ..errors import AuthenticationError, PivoiceError, SessionExpired, link_cause, should_retry
from ..pump import ConversationPump, ToolRunner
from ..realtime.backoff import backoff
from ..redact import scrub
from . import events as ev
from .connection import LiveConnection, LiveEndpoint
from .conversation import CloseSession, LiveConversation, LiveSettings, OpenSession
from .sessionstate import LiveOptions, LiveStats, status_of

__all__ = ["LiveOptions", "LiveSessionManager", "LiveStats"]

logger = logging.getLogger(__name__)


class LiveSessionManager(ConversationPump):
    def __init__(self, *, endpoint: Callable[[], LiveEndpoint], settings: Callable[[], LiveSettings],
                 conversation: LiveConversation, pipeline: AudioPipeline, run_tool: ToolRunner,
                 options: LiveOptions | None = None,
                 publish: Callable[[str, dict[str, Any]], None] = lambda k, d: None,
                 clock: Callable[[], float] = time.monotonic, wall: Callable[[], float] = time.time,
                 rng: random.Random | None = None) -> None:
        super().__init__(conversation=conversation, pipeline=pipeline, run_tool=run_tool, publish=publish,
                         clock=clock)
        self.endpoint = endpoint
        self.settings = settings
        self.options = options or LiveOptions()
        self.wall = wall
        self.rng = rng or random.Random()
        self.stats = LiveStats()
        self.conn: LiveConnection | None = None
        self.bad_frames: dict[str, int] = {}
        self.observers: list[Callable[[ev.LiveServerEvent], None]] = []
        self.last_delay_s = 0.0
        self._demand = asyncio.Event()       # a session is wanted
        self._closing = asyncio.Event()      # the open session should close
        self._close_reason = "idle"
        self._again = False
        self._wake = asyncio.Event()
        self._fresh = False

    # ------------------------------------------------------------------ commands
    @property
    def connected(self) -> bool:
        """Able to serve: a session is open, opening, or opens on demand."""
        return self.stats.link in ("up", "connecting", "standby")

    def wake(self) -> None:
        """Stop waiting (backoff or error state) and try again now: after a config reload."""
        self._wake.set()

    def open_on_demand(self, reason: str) -> None:
        """Open a session if none is open (the button, the wake word); a no-op when one is."""
        now = self.clock()
        if self._closing.is_set():
            self._again = True   # asked for while the last one closes: the next opens right after
        if self.conversation.request(now):
            logger.info("opening a GPT-Live session (%s)", reason)
            self.publish("connecting", {"reason": reason})
        self.conversation.idle_timer.activity(now)
        self._demand.set()
        self._outbox_ready.set()

    def wake_word(self) -> None:
        """The wake word was heard: a session, unless one is open."""
        self.open_on_demand("wake_word")

    def set_muted(self, muted: bool) -> None:
        self.conversation.set_muted(muted)
        self._outbox_ready.set()

    def new_conversation(self) -> None:
        """Forget the conversation; the open session closes, the next one starts fresh."""
        self.conversation.new_conversation()
        self._fresh = True
        if self.conn is not None:
            self._close("new_conversation")

    def end_after_reply(self) -> None:
        self.conversation.end_after_reply()

    def say(self, text: str) -> None:
        self._execute(self.conversation.say(text, self.clock()))

    def interrupt(self, cause: str) -> None:
        self.pipeline.interrupt(cause)

    def idle(self) -> bool:
        turns = self.pipeline.turns
        return (self.conversation.idle and not self.pipeline.speaking and not self._tool_tasks
                and not turns.segmenter.in_speech)

    def _other_action(self, action: Any) -> None:
        if isinstance(action, OpenSession):
            self.open_on_demand(action.reason)
        elif isinstance(action, CloseSession):
            self._close(action.reason)

    def _close(self, reason: str) -> None:
        self._close_reason = reason
        self._closing.set()

    # ---------------------------------------------------------------- the loop
    async def run(self) -> None:
        ticker = asyncio.get_running_loop().create_task(self._tick(), name="live-deadlines")
        self.publish("standby", {"reason": "start"})
        try:
            await self._sessions()
        finally:
            ticker.cancel()
            for task in list(self._tool_tasks):
                task.cancel()

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(self.options.tick_s)
            self._execute(self.conversation.tick(self.clock()))

    async def _sessions(self) -> None:
        delays = self._delays()
        last_start: float | None = None
        while True:
            await self._demand.wait()
            try:
                if last_start is not None and self.clock() - last_start < self.options.healthy_s:
                    await self._wait_turn(delays, "the last session ended within seconds")
                elif last_start is not None:
                    delays = self._delays()
                self.stats.link = "connecting"
                conn = await self._open()
                last_start = self.clock()
                await self._serve(conn)
            except (PivoiceError, OSError) as exc:
                if last_start is not None and self.clock() - last_start >= self.options.healthy_s:
                    delays = self._delays()
                await self._after_failure(exc, delays)
                last_start = None

    def _delays(self) -> Iterator[float]:
        return backoff(base_s=self.options.backoff_base_s, cap_s=self.options.backoff_cap_s, rng=self.rng)

    async def _wait_turn(self, delays: Iterator[float], why: str) -> None:
        delay = self.last_delay_s = self.stats.next_retry_at = next(delays)
        logger.warning("%s; waiting %.1f s before the next one", why, delay)
        self.stats.next_retry_at += self.clock()
        await self._sleep(delay)

    async def _sleep(self, seconds: float) -> None:
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._wake.wait()
        self.stats.next_retry_at = None

    async def _after_failure(self, exc: BaseException, delays: Iterator[float]) -> None:
        phase = "session" if self.conn is not None else "connect"
        self.conn = None
        self._end(lost=True, reopen=True)
        message = scrub(str(exc), self.endpoint().api_key)
        self.stats.last_error, self.stats.last_error_at = message, self.wall()
        fatal = not should_retry(exc)
        delay = self.options.fatal_retry_s if fatal else next(delays)
        self.last_delay_s = delay
        self.stats.link = "error" if fatal else "backoff"
        self.stats.next_retry_at = self.clock() + delay
        if fatal:   # minutes may pass: what was said is stale by then
            self.conversation.outbox.drop_audio()
            logger.error("%s", message, extra={"PIVOICE_ERROR": type(exc).__name__})
        else:
            self.stats.reconnects += 1
            logger.warning("%s; retrying in %.1f s", message, delay)
        self.publish("error", {"error": message, "fatal": fatal, "code": getattr(exc, "code", None),
                               "retry_in_s": round(delay, 2)})
        self.publish("link_down", {"cause": link_cause(exc), "code": getattr(exc, "code", None), "phase": phase,
                                   "error": message, "retry_in_s": round(delay, 2), "fatal": fatal})
        await self._sleep(delay)

    # ------------------------------------------------------------ one session
    async def _open(self) -> LiveConnection:
        endpoint = self.endpoint()
        if not endpoint.api_key:
            raise AuthenticationError("no API key is set", fix="put it in /etc/pivoice/openai_api_key (root only, "
                                      "install.sh --key-file does it) or OPENAI_API_KEY, then systemctl reload pivoice")
        fresh, self._fresh = self._fresh, False
        config = self.conversation.session_config(self.settings(), fresh=fresh)
        conn = await LiveConnection.open(endpoint, config, open_timeout_s=self.options.open_timeout_s,
                                         ping_interval_s=self.options.ping_interval_s,
                                         ping_timeout_s=self.options.ping_timeout_s)
        self.stats.connects += 1
        session = conn.session
        assert session is not None
        try:
            for event in self.conversation.begin_session(session_id=session.id, fresh=fresh, now=self.clock()):
                await conn.send(event)
        except BaseException:
            await conn.close()
            raise
        self._start(conn, carried=len(config.input or []), fresh=fresh)
        return conn

    def _start(self, conn: LiveConnection, *, carried: int, fresh: bool) -> None:
        session = conn.session
        assert session is not None
        now = self.clock()
        self.conn = conn
        self._closing.clear()
        self._again = False
        s = self.stats
        s.session_id, s.session_started, s.link, s.session_usage_s = session.id, now, "up", 0.0
        expires_in = session.expires_at - self.wall() if session.expires_at else None
        s.deadline = now + expires_in if expires_in is not None and expires_in > 0 else None
        s.history = (s.history + [session.id])[-20:]
        logger.info("GPT-Live session %s live: %d message(s) carried", session.id, carried,
                    extra={"PIVOICE_SESSION_ID": session.id})
        self.publish("session", {"session_id": session.id, "carried_items": carried, "fresh": fresh,
                                 "rotation": False, "api": "live",
                                 "expires_in_s": round(expires_in, 1) if expires_in is not None else None})

    async def _serve(self, conn: LiveConnection) -> None:
        """Run ``conn`` until it is closed on purpose (returns) or fails or expires (raises)."""
        sender = asyncio.create_task(self._send(conn), name="live-uplink")
        receiver = asyncio.create_task(self._receive(conn), name="live-downlink")
        closer = asyncio.create_task(self._closing.wait(), name="live-close")
        tasks = {sender, receiver, closer}
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            if closer in done:
                sender.cancel()
                await asyncio.gather(sender, return_exceptions=True)
                await self._send_close(conn, receiver)
                if self._again:   # what was said meanwhile is still queued: it goes to the next one
                    self._end(lost=False, reopen=True)
                    return
            elif receiver in done and not receiver.cancelled() and receiver.exception() is None:
                logger.info("the GPT-Live server closed the session")
            else:
                failed = next(t for t in done if not t.cancelled() and t.exception() is not None)
                raise failed.exception()  # type: ignore[misc]
        except SessionExpired:
            self.stats.expired += 1
            logger.info("the GPT-Live session expired; opening the next one with the conversation so far")
            self._end(lost=False, reopen=True)
            return
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await conn.close()
        self._end(lost=False, reopen=False)

    async def _send_close(self, conn: LiveConnection, receiver: asyncio.Task[None]) -> None:
        """``session.close``, then ``session.closed`` (the usage is final only then)."""
        with contextlib.suppress(PivoiceError, OSError):
            await conn.send(ev.SessionClose())
            async with asyncio.timeout(self.options.close_timeout_s):
                await asyncio.shield(receiver)

    def _end(self, *, lost: bool, reopen: bool) -> None:
        """The session is over: the conversation keeps every word; standby unless reopening."""
        s = self.stats
        s.usage_s += s.session_usage_s
        s.session_usage_s = 0.0
        had = self.conn is not None
        self.conn = None
        self._execute(self.conversation.end_session(lost=lost, now=self.clock(), reopen=reopen))
        for task in list(self._tool_tasks):
            task.cancel()
        if reopen:
            return
        reason = self._close_reason if self._closing.is_set() else "server"
        self._closing.clear()
        self._demand.clear()
        s.link = "standby"
        s.idle_closes += reason == "idle"
        if had:
            logger.info("GPT-Live session closed (%s): standby, %.0f s billed so far", reason, s.usage_s)
        self.publish("standby", {"reason": reason, "billed_s": round(s.usage_s, 1)})

    async def _receive(self, conn: LiveConnection) -> None:
        try:
            async for event in conn:
                for observe in self.observers:
                    observe(event)
                usage = event.usage if isinstance(event, (ev.UsageUpdated, ev.SessionClosed)) else None
                if usage is not None:
                    self.stats.session_usage_s = usage.seconds
                self._execute(self.conversation.server_event(event, self.clock()))
        finally:
            if conn.protocol_errors:
                self.bad_frames["malformed"] = self.bad_frames.get("malformed", 0) + conn.protocol_errors

    # -------------------------------------------------------------- status
    def status(self) -> dict[str, Any]:
        live = self.conn.protocol_errors if self.conn else 0
        return status_of(self.stats, now=self.clock(), idle_close_at=self.conversation.idle_timer.deadline(),
                         bad_frames=sum(self.bad_frames.values()) + live, counters=self.conversation.counters())
