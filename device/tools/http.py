"""Tools declared in the config, forwarded to an HTTP endpoint.

The model's call becomes ``POST url`` with ``{"name": ..., "arguments": {...}}``; a JSON answer
(or text) becomes the call's output. The request runs in a worker thread with the tool's
timeout, so a backend that never answers costs the conversation ``timeout`` seconds at most.
"""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from typing import Any

from ..config import HttpToolConfig
from ..realtime.session import Tool
from .box import ToolFailed, ToolSpec

MAX_OUTPUT = 4000


def http_tool(config: HttpToolConfig) -> ToolSpec:
    async def forward(args: dict[str, Any]) -> Any:
        return await asyncio.to_thread(_post, config, args)

    return ToolSpec(Tool(name=config.name, description=config.description, parameters=config.parameters),
                    forward, timeout_s=config.timeout)


def _post(config: HttpToolConfig, args: dict[str, Any]) -> Any:
    body = json.dumps({"name": config.name, "arguments": args}).encode()
    request = urllib.request.Request(config.url, data=body, method="POST",
                                     headers={"Content-Type": "application/json", "User-Agent": "pivoice"})
    try:
        with urllib.request.urlopen(request, timeout=config.timeout) as response:
            text = response.read(MAX_OUTPUT * 4).decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        raise ToolFailed(f"the service answered HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        if isinstance(reason, TimeoutError):
            raise TimeoutError from None   # the tool's own timeout: a "timeout", not an error
        raise ToolFailed(f"the service is unreachable: {reason}") from None
    try:
        return json.loads(text)
    except ValueError:
        return text[:MAX_OUTPUT]
