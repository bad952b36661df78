"""Responses delegation in the Live simulator (reference section 8).

A request that fits a declared ``function`` tool becomes a delegation:
``session.delegation.created`` (metadata only), then the backend's Responses events wrapped in
``response.event``: ``response.created``, ``response.output_item.added``,
``response.function_call_arguments.done``, ``response.output_item.done`` (the function call).
The task then waits for a ``response.item.create`` with a ``function_call_output`` for every
call and a ``response.create``; the same response continues with the message item and
``response.completed``, and the model speaks the result. Interrupting the model's speech does
not cancel the backend task (section 4).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..live import events as ev
from ..live.models import DelegationInfo
from ..live.validate import RequestError
from . import replies

if TYPE_CHECKING:
    from .live_session import LiveSimSession

_NEEDS_RESPONSES = ("{} needs Responses delegation (session.delegation.type = 'responses').")


@dataclass
class _Task:
    id: str
    response_id: str
    call: dict[str, Any]
    outputs: dict[str, str] = field(default_factory=dict)
    items: list[dict[str, Any]] = field(default_factory=list)
    done: bool = False

    @property
    def waiting_for(self) -> list[str]:
        return [self.call["call_id"]] if self.call["call_id"] not in self.outputs else []


class Delegations:
    def __init__(self, sim: LiveSimSession) -> None:
        self.sim = sim
        self.tasks: list[_Task] = []
        self._sequence = 0

    def accepts_append(self, delegation_id: str) -> bool:
        """Appends name a delegation only under client delegation (non-null ids are rejected
        under Responses delegation, section 3a); this simulator never delegates to the client."""
        return False

    def open_tasks(self) -> list[_Task]:
        return [t for t in self.tasks if not t.done]

    def cancel_all(self) -> None:
        for task in self.tasks:
            task.done = True

    async def _wrapped(self, task: _Task, event: dict[str, Any]) -> None:
        event["sequence_number"] = self._sequence
        self._sequence += 1
        await self.sim.send(self.sim.event(ev.ResponseEvent, delegation_id=task.id, event=event))

    def _response(self, task: _Task, status: str, output: list[dict[str, Any]],
                  usage: dict[str, Any] | None = None) -> dict[str, Any]:
        responses = self.sim.session["delegation"].get("responses") or {}
        return {"id": task.response_id, "object": "response", "status": status, "model": responses.get("model"),
                "output": output, "usage": usage}

    async def delegate(self, planned: replies.Call) -> None:
        """Start a backend task for a function call the request fits."""
        sim = self.sim
        sim.counts["delegations"] += 1
        call = {"id": sim.ids("fc"), "type": "function_call", "status": "completed", "call_id": sim.ids("call"),
                "name": planned.tool, "arguments": planned.arguments or "{}"}
        task = _Task(id=sim.ids("item"), response_id=sim.ids("resp"), call=call)
        self.tasks.append(task)
        await sim.send(sim.event(ev.DelegationCreated, offset_ms=sim.clock_ms, delegation=DelegationInfo(
            id=task.id, type="delegation", target="responses", response_id=task.response_id)))
        if sim.options.delegation_ack:
            await sim.speak(sim.options.delegation_ack)
        await self._wrapped(task, {"type": "response.created", "response": self._response(task, "in_progress", [])})
        await self._wrapped(task, {"type": "response.output_item.added", "output_index": 0,
                                   "item": dict(call, status="in_progress", arguments="")})
        await self._wrapped(task, {"type": "response.function_call_arguments.done", "item_id": call["id"],
                                   "output_index": 0, "arguments": call["arguments"]})
        await self._wrapped(task, {"type": "response.output_item.done", "output_index": 0, "item": call})

    async def item_create(self, event: ev.ResponseItemCreate) -> None:
        if self.sim.delegation_type != "responses":
            raise RequestError("invalid_request", _NEEDS_RESPONSES.format("response.item.create"), "type")
        item = event.item
        kind = item.get("type", "message")
        if kind == "function_call_output":
            task = next((t for t in self.open_tasks() if t.call["call_id"] == item.get("call_id")), None)
            if task is None:
                raise RequestError("invalid_value", f"No open function call with call_id '{item.get('call_id')}'.",
                                   "item.call_id")
            if not isinstance(item.get("output"), str):
                raise RequestError("missing_required_parameter", "Missing required parameter: 'item.output'.",
                                   "item.output")
            task.outputs[item["call_id"]] = item["output"]
        elif kind == "message":
            open_tasks = self.open_tasks()
            if not open_tasks:
                raise RequestError("no_active_delegation", "There is no delegated response to add items to.")
            open_tasks[-1].items.append(item)
        else:
            raise RequestError("invalid_value", f"Invalid value for 'item.type': '{kind}'.", "item.type")

    async def response_create(self, event: ev.ResponseCreate) -> None:
        if self.sim.delegation_type != "responses":
            raise RequestError("invalid_request", _NEEDS_RESPONSES.format("response.create"), "type")
        open_tasks = self.open_tasks()
        if not open_tasks:
            raise RequestError("no_active_delegation", "There is no delegated response to continue.")
        task = open_tasks[0]
        if task.waiting_for:
            raise RequestError("missing_tool_output", f"Send a function_call_output for call_id "
                               f"'{task.waiting_for[0]}' before response.create.")
        await self._finish(task)

    async def _finish(self, task: _Task) -> None:
        sim = self.sim
        output = task.outputs[task.call["call_id"]]
        sim.items.append({"type": "function_call_output", "call_id": task.call["call_id"], "output": output})
        text = replies.decide(sim.items, sim.tools()).text or "Done."
        message = {"id": sim.ids("msg"), "type": "message", "role": "assistant", "status": "completed",
                   "content": [{"type": "output_text", "text": text, "annotations": []}]}
        ids = {"item_id": message["id"], "output_index": 1, "content_index": 0}
        await self._wrapped(task, {"type": "response.output_item.added", "output_index": 1,
                                   "item": dict(message, status="in_progress", content=[])})
        for n, word in enumerate(text.split()):
            await self._wrapped(task, {"type": "response.output_text.delta", "delta": (" " if n else "") + word, **ids})
        await self._wrapped(task, {"type": "response.output_text.done", "text": text, **ids})
        await self._wrapped(task, {"type": "response.output_item.done", "output_index": 1, "item": message})
        tokens = len(json.dumps(task.call)) // 4 + len(output) // 4 + 50
        usage = {"input_tokens": tokens, "output_tokens": len(text.split()) + 5,
                 "total_tokens": tokens + len(text.split()) + 5}
        await self._wrapped(task, {"type": "response.completed",
                                   "response": self._response(task, "completed", [task.call, message], usage)})
        task.done = True
        # Delegated output is injected into the live conversation and spoken (section 8).
        await sim.speak(text)
