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
        self.calls += 1
        spec = self._specs.get(name)
        if spec is None:
            return self._fail(name, f"there is no tool named {name!r}")
        try:
            args = json.loads(arguments or "{}")
            if not isinstance(args, dict):
                raise ValueError("arguments are not a JSON object")
        except ValueError as exc:
            return self._fail(name, f"the arguments are not valid JSON: {exc}")
        try:
            result = await asyncio.wait_for(spec.handler(args), spec.timeout_s)
        except asyncio.TimeoutError:
            return self._fail(name, f"the tool did not answer within {spec.timeout_s:g} s", "timeout")
        except ToolFailed as exc:
            return self._fail(name, str(exc))
        except Exception as exc:  # a tool's bug must reach the model as an error, and the log
            logger.exception("tool %s failed", name)
            return self._fail(name, f"the tool failed: {exc.__class__.__name__}")
        logger.info("tool %s(%s) -> %s", name, arguments, str(result)[:200])
        return ToolOutput(json.dumps(result if isinstance(result, dict) else {"result": result}))

    def _fail(self, name: str, why: str, outcome: str = "error") -> str:
        self.failures += 1
        logger.warning("tool %s: %s", name, why)
        return ToolOutput(json.dumps({"error": why}), outcome)


class ToolOutput(str):
    """The output text, which also says how the call went ("ok", "error" or "timeout") for the
    ``tool_result`` event; it is a plain ``str`` to everything else."""

    outcome: str

    def __new__(cls, text: str, outcome: str = "ok") -> ToolOutput:
        self = super().__new__(cls, text)
        self.outcome = outcome
        return self


class ToolFailed(Exception):
    """A tool could not do what was asked; the message goes to the model."""
