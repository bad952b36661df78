"""LEDs follow the device's state: a consumer of state events on the bus.

Nothing in the core calls the LEDs; it publishes ``state`` events and this shows the
matching pattern. When the task ends (shutdown) the LEDs go off.
"""

from __future__ import annotations

import asyncio

from hardware.leds import PATTERNS, LedAnimator

from .bus import EventBus
from .state import DeviceState


async def follow_state(bus: EventBus, animator: LedAnimator) -> None:
    events = bus.subscribe()
    animation = asyncio.create_task(animator.run(), name="leds")
    try:
        async for event in events:
            if event.kind == "state":
                animator.show(PATTERNS[DeviceState(event.data["state"])])
    finally:
        animation.cancel()
        await asyncio.gather(animation, return_exceptions=True)
