"""The state table: what the LEDs show after each thing that happens."""

from __future__ import annotations

from device.bus import EventBus
from device.state import DeviceState as S
from device.statemachine import TRANSITIONS, Input as I, StateMachine


def run(*inputs):
    bus = EventBus()
    sub = bus.subscribe()
    machine = StateMachine(bus, clock=lambda: 0.0)
    for what in inputs:
        machine.feed(what)
    published = []
    while not sub.queue.empty():
        published.append(sub.queue.get_nowait().data["state"])
    return machine, published


def test_a_voice_turn():
    machine, seen = run(I.LINK_UP, I.SPEECH_STARTED, I.TURN_SENT, I.SPEECH_ENDED, I.RESPONSE_STARTED,
                        I.AUDIO_STARTED, I.REPLY_FINISHED)
    assert seen == ["idle", "listening", "thinking", "speaking", "idle"]


def test_barge_in_and_link_loss():
    machine, seen = run(I.LINK_UP, I.TURN_SENT, I.AUDIO_STARTED, I.SPEECH_STARTED, I.LINK_DOWN, I.LINK_UP)
    assert seen == ["idle", "thinking", "speaking", "listening", "offline", "idle"]


def test_mute_is_remembered_across_offline_and_replies():
    machine, seen = run(I.LINK_UP, I.MUTE, I.LINK_DOWN, I.LINK_UP, I.AUDIO_STARTED, I.REPLY_FINISHED, I.UNMUTE)
    assert seen == ["idle", "muted", "offline", "muted", "speaking", "muted", "idle"]


def test_error_needs_a_new_link():
    machine, seen = run(I.LINK_UP, I.FATAL, I.SPEECH_STARTED, I.LINK_DOWN, I.LINK_UP)
    assert seen == ["idle", "error", "offline", "idle"]


def test_every_state_can_reach_offline_and_error_except_as_documented():
    for state in S:
        if state not in (S.OFFLINE, S.ERROR):
            assert TRANSITIONS[(state, I.LINK_DOWN)] is S.OFFLINE
            assert TRANSITIONS[(state, I.FATAL)] is S.ERROR
    assert (S.ERROR, I.SPEECH_STARTED) not in TRANSITIONS


def test_ignored_inputs_publish_nothing():
    machine, seen = run(I.SPEECH_STARTED, I.REPLY_FINISHED)
    assert machine.state is S.OFFLINE and seen == []


def test_a_missing_audio_device_is_an_error_until_it_is_back_whatever_the_link_does():
    machine, seen = run(I.DEVICE_MISSING, I.LINK_UP, I.LINK_DOWN, I.LINK_UP, I.DEVICE_BACK)
    assert seen == ["error", "idle"]          # never "offline" or "idle" while the mic is missing
    machine, seen = run(I.LINK_UP, I.DEVICE_MISSING, I.LINK_DOWN, I.DEVICE_BACK)
    assert seen == ["idle", "error", "offline"]   # back, but the network is not: offline
    machine, seen = run(I.LINK_UP, I.FATAL, I.DEVICE_MISSING, I.DEVICE_BACK)
    assert seen == ["idle", "error"] and machine.state is S.ERROR   # the bad key still needs a person


def test_the_bus_is_the_only_way_in():
    from device.bus import BusEvent

    bus = EventBus()
    machine = StateMachine(bus, clock=lambda: 0.0)
    bus.listen(machine.follow)
    seen = []
    for kind, data in [("session", {}), ("speech_started", {"source": "device"}), ("turn", {}),
                       ("first_delta", {}), ("working", {}), ("reply_finished", {}), ("volume", {"level": 3}),
                       ("link_down", {"fatal": True, "cause": "auth"})]:
        bus.publish(BusEvent(kind, 0.0, data))
        seen.append(str(machine.state))
    assert seen == ["idle", "listening", "thinking", "speaking", "thinking", "idle", "idle", "error"]


def test_tools_after_a_spoken_preamble_show_thinking():
    machine, seen = run(I.LINK_UP, I.RESPONSE_STARTED, I.AUDIO_STARTED, I.WORKING, I.RESPONSE_STARTED,
                        I.AUDIO_STARTED, I.REPLY_FINISHED)
    assert seen == ["idle", "thinking", "speaking", "thinking", "speaking", "idle"]
