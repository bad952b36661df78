"""The push button: gpiozero edges -> (bridge) -> debounced gestures, delivered on the loop.

gpiozero's own ``bounce_time`` is left off: it is ignored on mock pins and hides timing from
tests; :mod:`hardware.gestures` debounces instead. Edges are stamped with the clock on
gpiozero's thread and cross into the event loop through :class:`~hardware.bridge.LoopBridge`.

The pin is a ``DigitalInputDevice``, not a ``Button``: gpiozero's Button starts a hold thread
that wakes ten times a second for as long as the device runs (0.1 % of a core here, ~1 % of
a Pi Zero 2 W's), and holds are :mod:`hardware.gestures`' business.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from .bridge import LoopBridge
from .gestures import GestureEvent, GestureRecognizer, GestureTiming

logger = logging.getLogger(__name__)


class PushButton:
    def __init__(self, pin: int, on_gesture: Callable[[GestureEvent], None], *, pin_factory: object,
                 active_low: bool = True, timing: GestureTiming | None = None,
                 clock: Callable[[], float] = time.monotonic, bridge: LoopBridge | None = None) -> None:
        from gpiozero import DigitalInputDevice

        self.recognizer = GestureRecognizer(timing)
        self.on_gesture = on_gesture
        self.clock = clock
        self.bridge = bridge or LoopBridge()
        self._wake = asyncio.Event()
        self.button = DigitalInputDevice(pin, pull_up=active_low, bounce_time=None, pin_factory=pin_factory)
        self.button.when_activated = lambda: self.bridge.post(self._edge, True, self.clock())
        self.button.when_deactivated = lambda: self.bridge.post(self._edge, False, self.clock())

    def _edge(self, pressed: bool, at: float) -> None:
        self._deliver(self.recognizer.edge(pressed, at))
        self._wake.set()

    def poll(self, now: float | None = None) -> None:
        """Fire whatever deadlines have passed by ``now`` (default: the clock)."""
        self._deliver(self.recognizer.tick(self.clock() if now is None else now))

    def _deliver(self, events: list[GestureEvent]) -> None:
        for event in events:
            logger.info("button: %s", event.gesture)
            self.on_gesture(event)

    async def run(self) -> None:
        """Sleep until the recogniser's next deadline (or the next edge), then poll."""
        try:
            while True:
                due = self.recognizer.next_deadline()
                self._wake.clear()
                timeout = None if due is None else max(0.0, due - self.clock())
                try:
                    async with asyncio.timeout(timeout):   # wait_for could swallow a cancellation
                        await self._wake.wait()
                except TimeoutError:
                    self.poll()
        finally:
            self.close()

    def close(self) -> None:
        self.button.close()
