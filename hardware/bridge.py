"""The one place where foreign threads enter the event loop.

The microphone's reader and the speaker's writer are threads of their own; gpiozero calls
button callbacks on its pin threads. None may touch asyncio objects. They call
:meth:`LoopBridge.post`, which schedules a function on the loop and returns at once: no
locks, no allocation beyond the call itself, no logging, nothing that can block.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any


class LoopBridge:
    def __init__(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.loop = loop or asyncio.get_running_loop()
        self.lost = 0  # posts after the loop closed (shutdown); counted, never raised

    def post(self, fn: Callable[..., Any], *args: Any) -> None:
        try:
            self.loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:  # the loop is closed: we are shutting down
            self.lost += 1
