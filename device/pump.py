"""What both session managers (Realtime and GPT-Live) do with their conversation core: hear the
pipeline (they are its listener), carry out the actions the core gives back, run tools.

A manager calls ``ConversationPump.__init__`` with its parts and may take more actions in
:meth:`_other_action`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from .audio.pipeline import AudioPipeline
from .audio.turns import Actions as TurnActions
from .conversation import FinishPlayback, NewConversation, Play, Publish, RunTool, StopPlayback

ToolRunner = Callable[[str, str], Awaitable[tuple[str, str]]]


class Sender(Protocol):
    """A session's connection, as the outbox sees it (Realtime and GPT-Live alike)."""

    async def send(self, event: Any) -> None: ...


class ConversationPump:
    def __init__(self, *, conversation: Any, pipeline: AudioPipeline, run_tool: ToolRunner,
                 publish: Callable[[str, dict[str, Any]], None], clock: Callable[[], float]) -> None:
        self.conversation = conversation
        self.pipeline = pipeline
        self.run_tool = run_tool
        self.publish = publish
        self.clock = clock
        self._tool_tasks: set[asyncio.Task[None]] = set()
        self._outbox_ready = asyncio.Event()   # the conversation queued events for the sender
        pipeline.listener = self

    # ------------------------------------------- the pipeline's listener (AudioListener)
    def turn(self, actions: TurnActions) -> None:
        self._execute(self.conversation.turn(actions, self.clock()))

    def barged_in(self, cause: str, played_ms: dict[str, int]) -> None:
        self._execute(self.conversation.barge_in(cause, played_ms, self.clock()))

    def playback_started(self, item_id: str) -> None:
        self._execute(self.conversation.playback_started(item_id, self.clock()))

    def playback_drained(self) -> None:
        self._execute(self.conversation.playback_drained(self.clock()))

    # ------------------------------------------------------------ carrying out actions
    def _execute(self, actions: list[Any]) -> None:
        for action in actions:
            if isinstance(action, Play):
                self.pipeline.play(action.item_id, action.pcm)
            elif isinstance(action, FinishPlayback):
                self.pipeline.finish()
            elif isinstance(action, StopPlayback):
                self.pipeline.interrupt(action.cause)   # comes back through barged_in()
            elif isinstance(action, Publish):
                self.publish(action.kind, action.data)
            elif isinstance(action, RunTool):
                self._start_tool(action)
            elif isinstance(action, NewConversation):
                self.new_conversation()
            else:
                self._other_action(action)
        if self.conversation.outbox:
            self._outbox_ready.set()
        self._executed()

    async def _send(self, conn: Sender) -> None:
        """Write the outbox to the connection in order, until cancelled or the link fails
        (an event leaves the outbox only once it was sent)."""
        outbox = self.conversation.outbox
        while True:
            while not outbox:
                self._outbox_ready.clear()
                await self._outbox_ready.wait()
            await conn.send(outbox.peek())
            outbox.pop()

    def _other_action(self, action: Any) -> None:
        raise TypeError(f"no way to carry out {action!r}")

    def _executed(self) -> None:
        """After each batch of actions (the Realtime manager wakes its rotation wait)."""

    def new_conversation(self) -> None:
        raise NotImplementedError

    def _start_tool(self, call: RunTool) -> None:
        async def run() -> None:
            output, outcome = await self.run_tool(call.name, call.arguments)
            self._execute(self.conversation.tool_finished(call.call_id, output, outcome, self.clock()))

        task = asyncio.get_running_loop().create_task(run(), name=f"tool-{call.name}")
        self._tool_tasks.add(task)
        task.add_done_callback(self._tool_tasks.discard)
