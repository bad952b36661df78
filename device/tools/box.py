"""Function calling: the tools the model may call, and running them without ever hanging.

Built-in tools act on the device (volume, mute, the time, end the conversation). Tools declared
in the config under ``[[tools]]`` are forwarded to an HTTP endpoint as a JSON POST, the way a
voice front-end delegates tasks to a backend (seed 003). Every call has a timeout; a slow,
failing or unknown tool gives the model an error result it can talk about, never an exception.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from ..realtime.session import Tool

logger = logging.getLogger(__name__)
Handler = Callable[[dict[str, Any]], Awaitable[Any]]


@dataclass(frozen=True)
class ToolSpec:
    tool: Tool
    handler: Handler
    timeout_s: float = 5.0


class ToolBox:
    def __init__(self, specs: list[ToolSpec] | tuple[ToolSpec, ...] = ()) -> None:
        self._specs: dict[str, ToolSpec] = {}
        for spec in specs:
            self.add(spec)
        self.calls = 0
        self.failures = 0

    def add(self, spec: ToolSpec) -> None:
        if spec.tool.name in self._specs:
            raise ValueError(f"tool {spec.tool.name!r} is declared twice")
        self._specs[spec.tool.name] = spec

    def tools(self) -> tuple[Tool, ...]:
        return tuple(s.tool for s in self._specs.values())

    async def call(self, name: str, arguments: str) -> str:
        """The JSON text to return to the model as the call's output."""
        return (await self.run(name, arguments))[0]

    async def run(self, name: str, arguments: str) -> tuple[str, str]:
        """(the JSON text for the model, the outcome: "ok", "error" or "timeout")."""
        self.calls += 1
        spec = self._specs.get(name)
        if spec is None:
            return self._fail(name, f"there is no tool named {name!r}"), "error"
        try:
            args = json.loads(arguments or "{}")
            if not isinstance(args, dict):
                raise ValueError("arguments are not a JSON object")
        except (ValueError, RecursionError) as exc:
            return self._fail(name, f"the arguments are not valid JSON: {str(exc)[:100]}"), "error"
        try:
            async with asyncio.timeout(spec.timeout_s):   # wait_for could swallow a cancellation
                result = await spec.handler(args)
        except TimeoutError:   # asyncio's, or the tool's own (an HTTP read timeout)
            return self._fail(name, f"the tool did not answer within {spec.timeout_s:g} s"), "timeout"
        except ToolFailed as exc:
            return self._fail(name, str(exc)), "error"
        except Exception as exc:  # a tool's bug must reach the model as an error, and the log
            logger.exception("tool %s failed", name)
            return self._fail(name, f"the tool failed: {exc.__class__.__name__}"), "error"
        logger.info("tool %s(%s) -> %s", name, arguments[:200], str(result)[:200])
        return json.dumps(result if isinstance(result, dict) else {"result": result}), "ok"

    def _fail(self, name: str, why: str) -> str:
        self.failures += 1
        logger.warning("tool %s: %s", name, why)
        return json.dumps({"error": why})


class ToolFailed(Exception):
    """A tool could not do what was asked; the message goes to the model."""
