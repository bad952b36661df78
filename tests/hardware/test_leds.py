"""LED patterns and backends, through gpiozero's mock pin factory."""

import asyncio

import pytest
from gpiozero.pins.mock import MockFactory, MockPWMPin

from device.bus import BusEvent, EventBus
from device.ledview import follow_state
from device.state import DeviceState
from hardware.leds import PATTERNS, GpioLeds, LedAnimator, Pattern, RgbLed, SimLeds


@pytest.fixture
def factory():
    f = MockFactory(pin_class=MockPWMPin)
    yield f
    f.reset()


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def levels(pin):
    return [round(s.state, 3) for s in pin.states]


def signature(pattern, seconds=4.0, step=0.01, mono=False):
    """What a person sees over a few seconds: the lit fraction, the number of changes, the peak."""
    frames = [pattern.colour_at(i * step) for i in range(int(seconds / step))]
    values = [max(c) for c in frames] if mono else frames
    lit = sum(1 for c in frames if max(c) > 0.05) / len(frames)
    changes = sum(1 for a, b in zip(values, values[1:]) if a != b)
    return round(lit, 2), changes, max(max(c) for c in frames)


@pytest.mark.parametrize("mono", [False, True])
def test_every_state_looks_different(mono):
    seen = {signature(PATTERNS[s], mono=mono) for s in DeviceState}
    assert len(seen) == len(DeviceState)


def test_blink_edges_and_pulse_frames():
    blink = Pattern("blink", on_s=0.2, off_s=0.3)
    assert blink.next_change(0.0) == pytest.approx(0.2) and blink.next_change(0.2) == pytest.approx(0.5)
    assert blink.colour_at(0.1) == (1, 1, 1) and blink.colour_at(0.25) == (0, 0, 0)
    pulse = Pattern("pulse", on_s=0.5, off_s=0.5)
    assert max(pulse.colour_at(0.5)) == pytest.approx(1.0) and max(pulse.colour_at(0.0)) == pytest.approx(0.0)
    assert Pattern("solid").next_change(3.0) is None


def test_pin_history_of_each_state_on_a_pwm_led(factory):
    clock = Clock()
    leds = GpioLeds((18,), brightness=0.5, pin_factory=factory)
    anim = LedAnimator(leds, clock=clock)
    pin = factory.pin(18)

    def play(state, seconds):
        pin.clear_states()
        anim.show(PATTERNS[state])
        while clock.now < anim._started + seconds:
            due = anim.render(clock.now)
            clock.now = due if due is not None else clock.now + seconds
        return levels(pin)[1:]

    assert play(DeviceState.LISTENING, 1.0) == [0.5]
    assert play(DeviceState.IDLE, 1.0) == [0.05]
    thinking = play(DeviceState.THINKING, 1.0)
    assert thinking == [0.5, 0.0, 0.5, 0.0, 0.5]  # 0.2 s on, 0.2 s off, for 1 s
    muted = play(DeviceState.MUTED, 4.0)
    assert muted == [0.0, 0.5, 0.0]  # already lit from thinking: off at 0.12 s, blip at 2 s, off
    speaking = play(DeviceState.SPEAKING, 1.2)
    peak = speaking.index(max(speaking))
    assert speaking[:peak] == sorted(speaking[:peak]) and speaking[peak:] == sorted(speaking[peak:], reverse=True)
    assert max(speaking) == pytest.approx(0.5, abs=0.01)


def test_active_low_led_is_inverted_on_the_pin(factory):
    leds = GpioLeds((25,), active_high=False, brightness=1.0, pin_factory=factory)
    leds.set_color((1, 1, 1))
    assert factory.pin(25).state == 0
    leds.set_color((0, 0, 0))
    assert factory.pin(25).state == 1


def test_plain_led_without_pwm_is_on_or_off(factory):
    from gpiozero.pins.mock import MockPin

    plain = MockFactory(pin_class=MockPin)
    leds = GpioLeds((5,), pwm=False, pin_factory=plain)
    leds.set_color(PATTERNS[DeviceState.IDLE].colour_at(0))
    assert plain.pin(5).state == 0  # a dim glow cannot be shown: off
    leds.set_color(PATTERNS[DeviceState.LISTENING].colour_at(0))
    assert plain.pin(5).state == 1


def test_rgb_led_shows_colours(factory):
    led = RgbLed((5, 6, 13), brightness=1.0, pin_factory=factory)
    led.set_color(PATTERNS[DeviceState.OFFLINE].colour_at(0.1))
    assert [factory.pin(p).state for p in (5, 6, 13)] == [1.0, 0.5, 0.0]


async def test_leds_follow_state_events_and_go_off_on_shutdown(factory):
    bus = EventBus()
    leds = GpioLeds((18,), brightness=1.0, pin_factory=factory)
    task = asyncio.create_task(follow_state(bus, LedAnimator(leds)))
    await asyncio.sleep(0)
    bus.publish(BusEvent("state", data={"state": "listening"}))
    for _ in range(50):
        await asyncio.sleep(0.01)
        if factory.pin(18).state == 1.0:
            break
    assert factory.pin(18).state == 1.0
    bus.publish(BusEvent("state", data={"state": "speaking"}))
    await asyncio.sleep(0.1)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert factory.pin(18).state == 0 and leds.leds[0].closed


def test_sim_leds_record_and_turn_off():
    clock = Clock()
    sim = SimLeds(clock=clock)
    anim = LedAnimator(sim, clock=clock)
    anim.show(PATTERNS[DeviceState.ERROR])
    clock.now = anim.render(0.0)
    anim.render(clock.now)
    anim.off()
    assert [c for _, c in sim.history] == [(1.0, 0.0, 0.0), (0.0, 0.0, 0.0), (0.0, 0.0, 0.0)]
    assert sim.closed


def test_ticks_draw_a_pulse_but_not_a_blink(factory):
    """tick() (the loop awake for a microphone period) draws a pulse's due frame; a blink's
    edges stay with the animator's own timer."""
    clock = Clock()
    leds = GpioLeds((18,), brightness=1.0, pin_factory=factory)
    anim = LedAnimator(leds, clock=clock)
    pin = factory.pin(18)
    anim.show(PATTERNS[DeviceState.SPEAKING])
    pin.clear_states()
    for i in range(1, 13):                        # 50 ms periods over 0.6 s: the pulse fades in
        clock.now = i * 0.05
        anim.tick()
    drawn = levels(pin)[1:]
    assert len(drawn) == 12 and drawn == sorted(drawn) and drawn[-1] == pytest.approx(1.0, abs=0.01)
    clock.now += 0.01
    anim.tick()                                   # not due yet: nothing drawn
    assert len(levels(pin)[1:]) == 12
    anim.show(PATTERNS[DeviceState.THINKING])     # a blink: on at once, then timer edges only
    pin.clear_states()
    start = clock.now
    for i in range(1, 9):
        clock.now = start + i * 0.05
        anim.tick()
    assert levels(pin)[1:] == []


async def test_run_leaves_a_pulse_to_ticks_and_takes_it_back_when_they_stop(factory):
    leds = GpioLeds((18,), brightness=1.0, pin_factory=factory)
    anim = LedAnimator(leds)
    pin = factory.pin(18)
    anim.show(PATTERNS[DeviceState.SPEAKING])
    task = asyncio.create_task(anim.run())
    loop = asyncio.get_running_loop()
    try:
        await asyncio.sleep(0)
        anim.tick()
        wakes, started = anim.wakes, loop.time()
        for _ in range(30):                       # ticks every 20 ms
            await asyncio.sleep(0.02)
            anim.tick()
        elapsed = loop.time() - started
        # the animator's own wake-ups: one per TICKED_WAKE_S at most, not one per frame (20/s)
        assert anim.wakes - wakes <= 1 + elapsed / 0.5
        pin.clear_states()
        for _ in range(500):                      # ticks stop: its own timer draws frames again
            await asyncio.sleep(0.01)
            if len(pin.states) > 4:
                break
        assert len(pin.states) > 4
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_ticks_further_apart_than_a_frame_and_a_half_leave_the_pulse_to_the_timer(factory):
    """[audio] mic_period_ms = 100: ticks at 10 a second would make a choppy pulse; the
    animator keeps drawing it on its own timer."""
    anim = LedAnimator(GpioLeds((18,), brightness=1.0, pin_factory=factory))
    anim.show(PATTERNS[DeviceState.SPEAKING])
    task = asyncio.create_task(anim.run())
    try:
        await asyncio.sleep(0)
        wakes = anim.wakes
        for _ in range(6):
            await asyncio.sleep(0.1)
            anim.tick()
        assert anim.wakes - wakes >= 3             # its own frames between the ticks
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def test_a_driver_that_fails_on_a_tick_is_reported_once_and_not_called_again(caplog):
    calls = []

    class Broken(SimLeds):
        def set_color(self, rgb):
            calls.append(rgb)
            if len(calls) > 1:                      # works once, then the bus fails
                raise OSError("SPI write failed")

    clock = Clock()
    anim = LedAnimator(Broken(), clock=clock)
    anim.show(PATTERNS[DeviceState.SPEAKING])
    for i in range(1, 6):
        clock.now = i * 0.05
        anim.tick()                                 # on the loop, inside on_mic: never raises
    assert len(calls) == 2 and caplog.text.count("the LEDs failed") == 1
