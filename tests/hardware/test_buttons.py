"""The push button through gpiozero on mock pins, into the event loop."""

import asyncio
import threading

import pytest
from gpiozero.pins.mock import MockFactory

from hardware.buttons import PushButton
from hardware.gestures import Gesture, GestureTiming


class Clock:
    now = 0.0

    def __call__(self):
        return self.now


@pytest.fixture
def factory():
    f = MockFactory()
    yield f
    f.reset()


async def press_sequence(button, pin, clock, edges):
    """Drive the real pin at the given times (pressed = pulled low), letting the loop run."""
    for t, pressed in edges:
        clock.now = t
        pin.drive_low() if pressed else pin.drive_high()
        await asyncio.sleep(0)  # the bridge delivers on the loop


async def test_gestures_from_a_bouncing_real_pin(factory):
    clock, seen = Clock(), []
    button = PushButton(17, lambda e: seen.append((e.gesture, e.pressed_at)), pin_factory=factory, clock=clock)
    pin = factory.pin(17)
    # AIY-style bounce on a tap, then a double tap, then a hold, then a long hold
    await press_sequence(button, pin, clock, [(0.0, True), (0.02, False), (0.08, True), (0.2, False)])
    button.poll(1.0)
    await press_sequence(button, pin, clock, [(2.0, True), (2.1, False), (2.3, True), (2.4, False)])
    button.poll(3.0)
    await press_sequence(button, pin, clock, [(4.0, True)])
    button.poll(4.7)
    await press_sequence(button, pin, clock, [(5.0, False)])
    await press_sequence(button, pin, clock, [(6.0, True)])
    button.poll(9.5)
    await press_sequence(button, pin, clock, [(10.0, False)])
    button.poll(11.0)
    # a bounced press dates from when the contact settled (0.08 s)
    assert seen == [(Gesture.TAP, 0.08), (Gesture.DOUBLE_TAP, 2.3), (Gesture.HOLD_START, 4.0),
                    (Gesture.HOLD_END, 4.0), (Gesture.HOLD_START, 6.0), (Gesture.LONG_HOLD, 6.0),
                    (Gesture.HOLD_END, 6.0)]
    button.close()


async def test_run_fires_deadlines_on_its_own(factory):
    seen = asyncio.Queue()
    timing = GestureTiming(debounce_s=0.01, hold_s=0.05, double_tap_s=0.03, long_hold_s=0.2)
    button = PushButton(27, seen.put_nowait, pin_factory=factory, timing=timing)
    task = asyncio.create_task(button.run())
    factory.pin(27).drive_low()
    first = await asyncio.wait_for(seen.get(), 10)
    second = await asyncio.wait_for(seen.get(), 10)
    assert (first.gesture, second.gesture) == (Gesture.HOLD_START, Gesture.LONG_HOLD)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert button.button.closed


async def test_the_button_starts_no_thread_of_its_own(factory):
    """gpiozero's Button would: a hold thread that wakes ten times a second while the device
    runs. Holds are the gesture recogniser's; the pin only reports edges."""
    before = set(threading.enumerate())
    seen = []
    button = PushButton(22, seen.append, pin_factory=factory, clock=Clock())
    assert set(threading.enumerate()) - before == set()
    await press_sequence(button, factory.pin(22), button.clock, [(0.0, True), (0.2, False)])
    button.poll(1.0)
    assert [e.gesture for e in seen] == [Gesture.TAP]
    button.close()
