"""Delegated tool work on the device side, sans-I/O (reference section 8).

Theory of operation: feed every server event to :meth:`DelegationTracker.on_event`; it returns
the function calls the device must execute (from ``response.event`` ``response.output_item.done``
items of type ``function_call``). When a call's result is ready, :meth:`result` returns the
client events to send: one ``response.item.create`` (``function_call_output``) per call and,
once no call of that delegation is still waiting, a single ``response.create`` (required to
continue; the service sends no ack). :attr:`running` says whether a delegated task is under
way, for the LEDs and the status. No clock, no I/O; the executor owns timeouts and errors and
reports them as an output string, as for Realtime.

Live does not say whether more calls of the same response will follow (no ``response.done``
before the outputs): ``response.create`` goes out when every call seen so far has its output.
Calls of one response arrive back to back, long before a local tool finishes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from .events import (
    DelegationCreated,
    LiveClientEvent,
    LiveServerEvent,
    ResponseCreate,
    ResponseEvent,
    ResponseItemCreate,
    SessionClosed,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ToolCall:
    """One function call to execute on the device."""

    delegation_id: str | None
    call_id: str
    name: str
    arguments: str


@dataclass
class _Task:
    id: str | None
    pending: dict[str, ToolCall] = field(default_factory=dict)   # call_id -> call awaiting its output
    finished: bool = False


class DelegationTracker:
    def __init__(self) -> None:
        self._tasks: dict[str | None, _Task] = {}
        self.calls_seen = 0
        self.completed = 0

    @property
    def running(self) -> bool:
        """A delegated task is under way (created and not yet completed or failed)."""
        return any(not t.finished for t in self._tasks.values())

    @property
    def waiting_calls(self) -> list[ToolCall]:
        return [c for t in self._tasks.values() for c in t.pending.values()]

    def _task(self, delegation_id: str | None) -> _Task:
        return self._tasks.setdefault(delegation_id, _Task(delegation_id))

    def on_event(self, event: LiveServerEvent) -> list[ToolCall]:
        """Track one server event; return the calls it asks the device to run."""
        if isinstance(event, DelegationCreated):
            self._task(event.delegation.id)
        elif isinstance(event, ResponseEvent):
            task = self._task(event.delegation_id)
            call = event.function_call
            if call is not None and call.call_id not in task.pending:
                tool_call = ToolCall(event.delegation_id, call.call_id, call.name, call.arguments)
                task.pending[call.call_id] = tool_call
                self.calls_seen += 1
                return [tool_call]
            if event.finished:
                task.finished = True
                self.completed += 1
                logger.debug("delegation %s finished: %s", event.delegation_id, event.kind)
        elif isinstance(event, SessionClosed):
            self.reset()
        return []

    def result(self, call: ToolCall, output: str) -> list[LiveClientEvent]:
        """The events that hand ``output`` back; ``response.create`` once the delegation's calls are all answered."""
        task = self._tasks.get(call.delegation_id)
        if task is None or task.pending.pop(call.call_id, None) is None:
            logger.info("dropping the result of %s (%s): its delegation is gone", call.name, call.call_id)
            return []
        events: list[LiveClientEvent] = [ResponseItemCreate.function_output(call.call_id, output)]
        if not task.pending:
            events.append(ResponseCreate())
        return events

    def reset(self) -> None:
        """A new session: nothing of the old one's delegations can be answered any more."""
        self._tasks.clear()
