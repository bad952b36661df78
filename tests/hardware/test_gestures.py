"""The gesture recogniser: time is an input, so these are exact and instant."""

import pytest

from hardware.gestures import Gesture, GestureRecognizer, GestureTiming

T = GestureTiming(debounce_s=0.1, hold_s=0.5, double_tap_s=0.35, long_hold_s=3.0)


def run(edges, until):
    """Feed (time, pressed) edges, then let time run to ``until``; return (gesture, at, pressed_at)."""
    rec = GestureRecognizer(T)
    out = []
    for t, pressed in edges:
        out += rec.edge(pressed, t)
    out += rec.tick(until)
    return [(e.gesture, round(e.at, 3), round(e.pressed_at, 3)) for e in out], rec


def test_tap_is_confirmed_after_the_double_tap_window():
    got, _ = run([(0.0, True), (0.15, False)], until=0.55)
    assert got == []  # still inside the window (0.15 + 0.35, confirmed at +debounce)
    got, _ = run([(0.0, True), (0.15, False)], until=0.7)
    assert got == [(Gesture.TAP, 0.6, 0.0)]


def test_aiy_button_bounce_makes_one_tap_not_two():
    # the arcade button fires a second time about 80 ms after the first press
    got, rec = run([(0.0, True), (0.02, False), (0.08, True), (0.25, False)], until=2.0)
    assert [g for g, *_ in got] == [Gesture.TAP]
    assert rec.bounces == 1


def test_hold_is_push_to_talk_from_the_press():
    got, _ = run([(1.0, True), (2.6, False)], until=3.0)
    assert got == [(Gesture.HOLD_START, 1.5, 1.0), (Gesture.HOLD_END, 2.6, 1.0)]


def test_long_hold_is_reported_and_its_release_too():
    got, rec = run([(0.0, True), (4.0, False)], until=5.0)
    assert got == [(Gesture.HOLD_START, 0.5, 0.0), (Gesture.LONG_HOLD, 3.0, 0.0), (Gesture.HOLD_END, 4.0, 0.0)]
    assert rec.state == "idle"


def test_presses_during_a_long_hold_change_nothing():
    # duplicate press edges and a short bounce while the button is held down
    edges = [(0.0, True), (1.0, True), (1.5, False), (1.53, True), (2.0, True)]
    got, rec = run(edges, until=3.2)
    assert got == [(Gesture.HOLD_START, 0.5, 0.0), (Gesture.LONG_HOLD, 3.0, 0.0)]
    assert rec.state == "long" and rec.bounces == 1


def test_double_tap_exactly_at_the_window_edge():
    got, _ = run([(0.0, True), (0.1, False), (0.45, True), (0.55, False)], until=2.0)
    assert got == [(Gesture.DOUBLE_TAP, 0.55, 0.45)]


def test_second_press_just_after_the_window_is_two_taps():
    got, _ = run([(0.0, True), (0.1, False), (0.46, True), (0.56, False)], until=2.0)
    assert [g for g, *_ in got] == [Gesture.TAP, Gesture.TAP]


def test_tap_then_hold_is_a_tap_then_push_to_talk():
    got, _ = run([(0.0, True), (0.12, False), (0.3, True)], until=1.0)
    assert got == [(Gesture.TAP, 0.8, 0.3), (Gesture.HOLD_START, 0.8, 0.3)]


def test_next_deadline_tells_the_driver_when_to_wake():
    rec = GestureRecognizer(T)
    assert rec.next_deadline() is None
    rec.edge(True, 10.0)
    assert rec.next_deadline() == pytest.approx(10.1)  # debounce settles
    rec.tick(10.1)
    assert rec.next_deadline() == pytest.approx(10.5)  # hold


@pytest.mark.parametrize("kwargs", [dict(hold_s=0.05), dict(long_hold_s=0.4), dict(double_tap_s=0.05)])
def test_inconsistent_timings_are_refused(kwargs):
    with pytest.raises(ValueError):
        GestureTiming(**kwargs)
