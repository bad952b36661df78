"""The session manager: one Realtime session after another, for weeks.

Theory of operation.

* **Connect**: open the WebSocket, configure it (``session.update``, wait for
  ``session.updated``), then give it the conversation so far (:mod:`.carryover`). Only then does
  the uplink start writing into it.
* **Rotate**: the deadline is ``expires_at`` from ``session.created`` (else ``[realtime]
  session_limit``). ``margin`` before it, the next session is opened and configured in the
  background while the current one carries on. The switch happens when the conversation is
  idle (nobody talking, no reply playing, no tool running), or at the hard deadline at the
  latest. User audio waits in the pipeline's queue during the switch, so none is lost, and
  nothing is playing, so nobody hears a gap.
* **Verify the carry-over**: the first reply after replayed assistant items must have audio
  (field notes item 3). If it is text only, the carried replies are deleted, the text reply is
  deleted, and the reply is asked for again; later carry-overs put replies in the instructions.
* **Network loss**: reconnect with full-jitter backoff (0.5 s doubling to 30 s); the LEDs show
  offline; the uplink queue is bounded by the pipeline. **A bad key or a rejected setup** is
  the error state, retried after ``fatal_retry`` seconds or at once after a reload (SIGHUP).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace

from ..errors import (AuthenticationError, ConnectionLost, PivoiceError, RejectedSetupError, SessionExpired, link_cause,
                      should_retry)
from ..statemachine import Input, StateMachine
from ..state import DeviceState
from . import events as ev
from .backoff import backoff
from .carryover import History, digest, instructions_with
from .connection import Endpoint, RealtimeConnection, scrub
from .dialect import render_response_params, render_session
from .models import Item
from .session import SessionSettings

logger = logging.getLogger(__name__)
POLL_S = 0.05


@dataclass
class SessionStats:
    connects: int = 0
    reconnects: int = 0
    rotations: int = 0
    expired: int = 0
    turns: int = 0
    replies: int = 0
    text_only_fallbacks: int = 0
    session_id: str | None = None
    session_started: float | None = None    # monotonic
    deadline: float | None = None           # monotonic
    link: str = "starting"                   # connecting | up | backoff | error
    next_retry_at: float | None = None
    last_error: str | None = None
    last_error_at: float | None = None      # wall clock
    rotate_at: float | None = None          # monotonic: when the next session is opened
    history: list[str] = field(default_factory=list)


@dataclass
class Options:
    session_limit_s: float = 1800.0
    rotate_margin_s: float = 60.0
    carry_turns: int = 6
    fatal_retry_s: float = 600.0
    backoff_base_s: float = 0.5
    backoff_cap_s: float = 30.0
    open_timeout_s: float = 10.0
    ping_interval_s: float | None = 10.0
    ping_timeout_s: float | None = 10.0


class SessionManager:
    def __init__(self, *, endpoint: Callable[[], Endpoint], settings: Callable[[], SessionSettings],
                 pipeline: object, machine: StateMachine, history: History,
                 call_tool: Callable[[str, str], Awaitable[str]], options: Options | None = None,
                 publish: Callable[[str, dict], None] = lambda kind, data: None,
                 clock: Callable[[], float] = time.monotonic, wall: Callable[[], float] = time.time,
                 rng: random.Random | None = None) -> None:
        from ..audio.pipeline import AudioPipeline

        self.endpoint = endpoint
        self.settings = settings
        self.pipeline: AudioPipeline = pipeline  # type: ignore[assignment]
        self.machine = machine
        self.history = history
        self.call_tool = call_tool
        self.options = options or Options()
        self.publish = publish
        self.clock = clock
        self.wall = wall
        self.rng = rng or random.Random()
        self.stats = SessionStats()
        self.conn: RealtimeConnection | None = None
        self._wake = asyncio.Event()         # reload, new conversation: stop waiting
        self._rotate_now = asyncio.Event()
        self._fresh = False                  # next session starts without carry-over
        self._tool_tasks: set[asyncio.Task] = set()
        self._audio_responses: set[str] = set()
        self._verify_audio = False
        self._end_after_reply = False
        self._hard_deadline = 0.0
        self.last_delay_s = 0.0

    # ------------------------------------------------------------------ commands
    def wake(self) -> None:
        """Stop waiting (backoff or error state) and try again now: after a config reload."""
        self._wake.set()

    def new_conversation(self) -> None:
        """Forget the conversation and continue in a fresh session (long hold, CLI)."""
        self.history.clear()
        self._fresh = True
        self._rotate_now.set()
        self._wake.set()

    def end_after_reply(self) -> None:
        self._end_after_reply = True

    def say(self, text: str) -> None:
        """Inject a text turn; the device speaks the reply."""
        self.pipeline.send_later(ev.ItemCreate(item=Item.user_text(text)))
        self.pipeline.send_later(ev.ResponseCreate())

    # ---------------------------------------------------------------- the loop
    async def run(self) -> None:
        delays = self._delays()
        pending: RealtimeConnection | None = None
        while True:
            try:
                if pending is None:
                    self.stats.link = "connecting"
                    pending = await self._open()
                conn, pending = pending, None
                await self._start_conversation(conn)
                delays = self._delays()
                pending = await self._serve(conn)
            except asyncio.CancelledError:
                if pending is not None:
                    await pending.close()
                raise
            except (PivoiceError, OSError) as exc:
                pending = None
                await self._after_failure(exc, delays)

    def _delays(self):  # noqa: ANN202 - a generator of seconds
        return backoff(base_s=self.options.backoff_base_s, cap_s=self.options.backoff_cap_s, rng=self.rng)

    async def _after_failure(self, exc: BaseException, delays) -> None:  # noqa: ANN001
        phase, self.conn = "session" if self.conn is not None else "connect", None
        self._reset_link_state()
        message = scrub(str(exc), self.endpoint().api_key)
        self.stats.last_error, self.stats.last_error_at = message, self.wall()
        if isinstance(exc, SessionExpired):
            # The server ended it before we rotated (clock skew, a failed rotation): go on now.
            self.stats.expired += 1
            logger.warning("session expired before rotation; opening a new one")
            self._link_down(exc, phase, 0.0)
            return
        if not should_retry(exc):
            self.stats.link = "error"
            logger.error("%s", message, extra={"PIVOICE_ERROR": type(exc).__name__})
            self.machine.feed(Input.FATAL, error=message)
            self.publish("error", {"error": message, "fatal": True})
            self._link_down(exc, phase, self.options.fatal_retry_s)
            await self._sleep(self.options.fatal_retry_s)
            self.machine.feed(Input.LINK_DOWN)
            return
        delay = self.last_delay_s = next(delays)
        self.stats.link, self.stats.next_retry_at = "backoff", self.clock() + delay
        self.stats.reconnects += 1
        logger.warning("%s; retrying in %.1f s", message, delay)
        self.machine.feed(Input.LINK_DOWN, error=message, retry_in_s=round(delay, 2))
        self.publish("error", {"error": message, "fatal": False, "retry_in_s": round(delay, 2)})
        self._link_down(exc, phase, delay)
        await self._sleep(delay)

    def _link_down(self, exc: BaseException, phase: str, retry_in_s: float) -> None:
        """For metrics: why (a fixed word), the server's code, and whether it died opening."""
        self.publish("link_down", {"cause": link_cause(exc), "code": getattr(exc, "code", None), "phase": phase,
                                   "retry_in_s": round(retry_in_s, 2)})

    async def _sleep(self, seconds: float) -> None:
        self._wake.clear()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)
        self.stats.next_retry_at = None

    def _reset_link_state(self) -> None:
        """The link failed: stop the cut-off reply and the tools it asked for."""
        self.pipeline.playback.flush()
        self._forget_session()
        for task in self._tool_tasks:
            task.cancel()

    def _forget_session(self) -> None:
        """Per-session bookkeeping that means nothing to the next session."""
        self.pipeline.reset_session()
        self._audio_responses.clear()

    # ------------------------------------------------------------ one session
    async def _open(self) -> RealtimeConnection:
        endpoint = self.endpoint()
        if not endpoint.api_key:
            raise AuthenticationError("no API key is set", fix="put it in /etc/pivoice/openai_api_key (root only, "
                                      "install.sh --key-file does it) or OPENAI_API_KEY, then systemctl reload pivoice")
        conn = await RealtimeConnection.open(endpoint, open_timeout_s=self.options.open_timeout_s,
                                             ping_interval_s=self.options.ping_interval_s,
                                             ping_timeout_s=self.options.ping_timeout_s)
        try:
            await conn.send(ev.SessionUpdate(session=render_session(self.settings(), endpoint.dialect)))
            await asyncio.wait_for(self._until_updated(conn), self.options.open_timeout_s)
        except BaseException:
            await conn.close()
            raise
        session = conn.session
        assert session is not None
        now = self.clock()
        remaining = (session.expires_at - self.wall()) if session.expires_at else self.options.session_limit_s
        conn.deadline = now + max(1.0, remaining)
        self.stats.connects += 1
        return conn

    async def _until_updated(self, conn: RealtimeConnection) -> None:
        async for event in conn:
            if isinstance(event, ev.SessionUpdated):
                return
            if isinstance(event, ev.ErrorEvent):
                raise RejectedSetupError(f"the server rejected the session settings: {event.code} "
                                         f"({event.error.param or 'no parameter named'})", code=event.code,
                                         fix="check [realtime] voice, model and [turns] in the config")

    async def _start_conversation(self, conn: RealtimeConnection) -> None:
        """Make ``conn`` the current session: carry the conversation over, then go live."""
        fresh, self._fresh = self._fresh, False
        self._rotate_now.clear()
        items, earlier = ([], "") if fresh else self.history.carry(self.options.carry_turns)
        if earlier:
            settings = self.settings()
            carried = replace(settings, instructions=instructions_with(settings.instructions or "", earlier))
            await conn.send(ev.SessionUpdate(session=render_session(carried, conn.endpoint.dialect)))
        for item in items:
            await conn.send(ev.ItemCreate(item=item))
        self._verify_audio = bool(self.history.carried_assistant_ids()) and not fresh
        session = conn.session
        assert session is not None
        self.conn = conn
        self.stats.session_id = session.id
        self.stats.session_started = self.clock()
        self.stats.deadline = deadline = conn.deadline or self.clock() + self.options.session_limit_s
        margin = min(self.options.rotate_margin_s, max(1.0, (deadline - self.clock()) / 4))
        self.stats.rotate_at = deadline - margin
        self._hard_deadline = deadline - min(margin / 3, 5.0)
        self.stats.link = "up"
        self.stats.history = (self.stats.history + [session.id or "?"])[-20:]
        logger.info("session %s live: %d carried item(s), digest %d chars, %.0f s to its limit",
                    session.id, len(items), len(earlier), self.stats.deadline - self.clock(),
                    extra={"PIVOICE_SESSION_ID": session.id or ""})
        self.machine.feed(Input.LINK_UP, session_id=session.id)
        self.publish("session", {"session_id": session.id, "carried_items": len(items), "fresh": fresh,
                                 "expires_in_s": round(self.stats.deadline - self.clock(), 1)})

    async def _serve(self, conn: RealtimeConnection) -> RealtimeConnection:
        """Run ``conn`` until the next one is ready to take over (returned) or it fails (raised)."""
        sender = asyncio.create_task(self.pipeline.run_sender(conn.send), name="uplink")
        receiver = asyncio.create_task(self._receive(conn), name="downlink")
        rotator = asyncio.create_task(self._rotation(conn), name="rotation")
        tasks = {sender, receiver, rotator}
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            results = await asyncio.gather(*tasks, return_exceptions=True)
        if rotator in done and not rotator.cancelled() and rotator.exception() is None:
            await conn.close()
            self._forget_session()
            self.stats.rotations += 1
            return rotator.result()
        await conn.close()
        for task, result in zip(tasks, results):
            if task in done and isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
                raise result
        raise ConnectionLost("the Realtime connection ended")

    async def _rotation(self, conn: RealtimeConnection) -> RealtimeConnection:
        deadline, hard, rotate_at = self.stats.deadline or 0.0, self._hard_deadline, self.stats.rotate_at or 0.0
        with contextlib.suppress(asyncio.TimeoutError):
            # rotate_margin 0: no proactive rotation (the naive way: reconnect when it expires).
            wait = max(0.0, rotate_at - self.clock()) if self.options.rotate_margin_s > 0 else None
            await asyncio.wait_for(self._rotate_now.wait(), wait)
        urgent = self._rotate_now.is_set()
        logger.info("%s: opening the next session", "new conversation" if urgent and self._fresh else "rotation")
        nxt = await self._open_before(hard)
        try:
            while not urgent and not self.conversation_idle() and self.clock() < hard:
                await asyncio.sleep(POLL_S)
        except BaseException:
            await nxt.close()
            raise
        if not urgent and not self.conversation_idle():
            logger.warning("rotating in the middle of a turn: the session limit is %.1f s away", deadline - self.clock())
            self.pipeline.playback.flush()
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

    def conversation_idle(self) -> bool:
        turns = self.pipeline.turns
        return (self.machine.state in (DeviceState.IDLE, DeviceState.MUTED) and not self._tool_tasks
                and self.pipeline.active_response is None and not self.pipeline.playback.active
                and not turns.talking and not turns.segmenter.in_speech)

    # ------------------------------------------------------------- downlink
    async def _receive(self, conn: RealtimeConnection) -> None:
        async for event in conn:
            self.pipeline.on_server_event(event)
            await self._on_event(conn, event)

    async def _on_event(self, conn: RealtimeConnection, event: ev.ServerEvent) -> None:
        if isinstance(event, ev.InputAudioCommitted):
            self.stats.turns += 1
            self.history.placeholder(event.item_id, "user")
            self.machine.feed(Input.TURN_SENT)
            self.publish("turn", {"item_id": event.item_id})
        elif isinstance(event, ev.InputTranscriptionCompleted):
            self.history.record(event.item_id, "user", event.transcript)
            self.publish("heard", {"item_id": event.item_id, "text": event.transcript})
        elif (isinstance(event, ev.ConversationItemAdded) and event.item.role == "user" and event.item.text
              and not (event.item.id or "").startswith("carry_")):
            self.history.record(event.item.id or "", "user", event.item.text)
        elif isinstance(event, ev.SpeechStarted):
            self.machine.feed(Input.SPEECH_STARTED)
        elif isinstance(event, ev.ResponseCreated):
            self.machine.feed(Input.RESPONSE_STARTED)
        elif isinstance(event, ev.AudioDelta):
            if event.response_id not in self._audio_responses and self.pipeline.active_response == event.response_id:
                self._audio_responses.add(event.response_id)
                self.machine.feed(Input.AUDIO_STARTED)
                self.publish("first_delta", {"response_id": event.response_id, "item_id": event.item_id})
        elif isinstance(event, ev.AudioTranscriptDone):
            self.history.record(event.item_id, "assistant", event.transcript)
        elif isinstance(event, ev.ResponseDone):
            await self._on_response_done(conn, event.response)
        elif isinstance(event, ev.ErrorEvent):
            message = scrub(event.error.message[:300], conn.endpoint.api_key)
            self.stats.last_error, self.stats.last_error_at = f"{event.code}: {message}", self.wall()
            self.publish("error", {"code": event.code, "error": message, "fatal": False})

    async def _on_response_done(self, conn: RealtimeConnection, response) -> None:  # noqa: ANN001
        self.stats.replies += 1
        calls = [item for item in response.output if item.type == "function_call"]
        messages = [item for item in response.output if item.type == "message"]
        had_audio = response.id in self._audio_responses or any(item.has_audio for item in messages)
        self.publish("reply", {"response_id": response.id, "status": response.status, "audio": had_audio,
                               "text": " ".join(i.text for i in messages)[:300], "tools": [c.name for c in calls]})
        if response.status == "cancelled":
            for item in messages:
                self.history.mark_interrupted(item.id or "")
        if self._verify_audio and messages and response.status == "completed":
            self._verify_audio = False
            if had_audio:
                logger.info("carry-over verified: the first reply in the new session has audio")
            else:
                await self._text_only_fallback(conn, messages)
                return
        for call in calls:
            task = asyncio.create_task(self._run_tool(call), name=f"tool-{call.name}")
            self._tool_tasks.add(task)
            task.add_done_callback(self._tool_tasks.discard)
        if not calls:
            if not had_audio:
                self.machine.feed(Input.REPLY_FINISHED)
            if self._end_after_reply:
                self._end_after_reply = False
                asyncio.get_running_loop().create_task(self._end_when_quiet(), name="end-conversation")

    async def _text_only_fallback(self, conn: RealtimeConnection, messages: list[Item]) -> None:
        """Field notes item 3: the model answered in text after replayed history. Delete what
        biased it and the text reply, and ask again; later carry-overs use the digest only."""
        self.stats.text_only_fallbacks += 1
        carried = self.history.carried_assistant_ids()
        logger.warning("the first reply after the carry-over was text only; removing %d carried "
                       "replies and asking again", len(carried))
        self.history.assistant_items_failed()
        for item_id in carried + [m.id for m in messages if m.id]:
            self.pipeline.send_later(ev.ItemDelete(item_id=item_id))
        instructions = instructions_with(self.settings().instructions or "", digest(self.history.turns[-12:]))
        params = render_response_params(conn.endpoint.dialect, instructions=instructions)
        self.pipeline.send_later(ev.ResponseCreate(response=params))
        self.publish("carry_over_fallback", {"deleted": len(carried)})

    async def _run_tool(self, call: Item) -> None:
        self.publish("tool", {"name": call.name, "arguments": call.arguments})
        output = await self.call_tool(call.name or "", call.arguments or "{}")
        self.publish("tool_result", {"name": call.name, "output": output[:300],
                                     "outcome": getattr(output, "outcome", "ok")})
        self.pipeline.send_later(ev.ItemCreate(item=Item.function_output(call.call_id or "", output)))
        self.pipeline.send_later(ev.ResponseCreate())

    async def _end_when_quiet(self) -> None:
        while self.pipeline.playback.active:
            await asyncio.sleep(POLL_S)
        logger.info("the conversation ended; the next one starts fresh")
        self.new_conversation()

    # -------------------------------------------------------------- status
    def status(self) -> dict:
        now = self.clock()
        s = self.stats
        return {
            "link": s.link, "session_id": s.session_id,
            "session_age_s": round(now - s.session_started, 1) if s.session_started and s.link == "up" else None,
            "rotation_in_s": round(max(0.0, s.rotate_at - now), 1) if s.rotate_at and s.link == "up" else None,
            "deadline_in_s": round(s.deadline - now, 1) if s.deadline and s.link == "up" else None,
            "next_retry_in_s": round(s.next_retry_at - now, 1) if s.next_retry_at else None,
            "connects": s.connects, "reconnects": s.reconnects, "rotations": s.rotations, "expired": s.expired,
            "turns": s.turns, "replies": s.replies, "text_only_fallbacks": s.text_only_fallbacks,
            "last_error": s.last_error, "last_error_at": s.last_error_at,
        }
