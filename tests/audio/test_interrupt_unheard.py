"""An interruption drops what the speaker's buffer holds (it is not heard), so the milliseconds
reported as played of the reply (what the server truncates it at) leave it out."""

from __future__ import annotations

from device.audio.pipeline import AudioPipeline, unheard
from device.audio.turns import TurnMode, TurnTaker

RATE = 24000


def test_what_the_buffer_held_is_taken_off_the_last_items():
    assert unheard({"a": 300, "b": 200}, 60) == {"a": 300, "b": 140}
    assert unheard({"a": 300, "b": 40}, 60) == {"a": 280, "b": 0}
    assert unheard({"a": 30}, 60) == {"a": 0}
    assert unheard({"a": 300}, 0) == {"a": 300}
    assert unheard({}, 60) == {}


def test_an_interruption_hushes_the_speaker_and_reports_only_what_was_heard():
    p = AudioPipeline(TurnTaker(TurnMode.SERVER_VAD), clock=lambda: 100.0)
    hushed: list[bool] = []
    p.speaker_lead = lambda: 0.06
    p.hush_speaker = lambda: hushed.append(True)
    p.speaker_opened(RATE)
    p.play("item_1", bytes(RATE * 2))          # a second of reply
    for _ in range(25):                          # the speaker took 500 ms of it
        p.read(RATE // 50 * 2)
    played = p.interrupt("voice")
    assert hushed == [True]
    assert played == {"item_1": 440}             # 60 ms of it was still in the buffer
    assert p.last_barge_in["played_ms"] == {"item_1": 440}
