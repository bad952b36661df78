"""Keep an audio device open through a missing, busy or unplugged device (any
:class:`hardware.interfaces.AudioDevice`: the real ones in hardware.audio, the simulated twins)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from . import quiet
from .errors import AudioDeviceError

# The name admins know from the journal ("hardware.audio: microphone: still failing ...").
logger = logging.getLogger("hardware.audio")


async def keep_open(device: Any, *, delays: Callable[[], Any], check_s: float = 0.5,
                    on_problem: Callable[[AudioDeviceError | None], None] = lambda problem: None) -> None:
    """Keep an audio device open: retry a missing or busy device with backoff, reopen one that
    stops (unplugged), report each problem and its clearing through ``on_problem``. Runs until
    cancelled; never raises AudioDeviceError, so the rest of the device keeps running."""
    waits = delays()
    retries = quiet.RetryLog(logger, "speaker" if getattr(device, "output", False) else "microphone")
    while True:
        try:
            device.open()
        except AudioDeviceError as problem:
            retries.failed(problem)
            on_problem(problem)
            await asyncio.sleep(next(waits))
            continue
        retries.cleared()
        on_problem(None)
        waits = delays()
        try:
            while device.alive:
                await asyncio.sleep(check_s)
        finally:
            device.close()
        stopped = AudioDeviceError(f"audio device {device.device_name!r} stopped (unplugged?); reopening")
        logger.error("%s", stopped)
        on_problem(stopped)
