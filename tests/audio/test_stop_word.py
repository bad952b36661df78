"""``[wake] stop``: a word that stops the device while it speaks, through the real pipeline and a
real microWakeWord model (no "stop" model ships with pymicro-wakeword, so a built-in one stands
in for it: the mechanism is the model's, whatever the word)."""

from __future__ import annotations

import numpy as np
import pytest

from device import config as cfg
from device.audio.pipeline import AudioPipeline
from device.audio.turns import TurnMode, TurnTaker
from device.audio.wakegate import WakeGate, WakeSettings
from device.errors import ConfigError

from .test_hands_free import RATE, Room, flite48, needs_wake, reply24

wake = pytest.importorskip("device.audio.wake")


def detector(word: str):
    try:
        return wake.WakeWordDetector(word)
    except wake.WakeWordUnavailable as exc:
        pytest.skip(str(exc))


def stop_pipeline(*, with_wake_word: bool, mode: TurnMode = TurnMode.SERVER_VAD) -> tuple[AudioPipeline, list[str]]:
    gate = WakeGate(WakeSettings(follow_up_s=0.0)) if with_wake_word else None
    turns = TurnTaker(mode, gate=gate)
    p = AudioPipeline(turns, wake=detector("hey_jarvis") if with_wake_word else None, stop=detector("alexa"))
    heard: list[str] = []
    p.on_wake = lambda word, score: heard.append(word)
    return p, heard


def said(tmp_path, text: str) -> np.ndarray:
    return np.concatenate([np.zeros(RATE), flite48(tmp_path, text, "rms")])


@needs_wake
def test_the_stop_word_stops_the_reply_and_nothing_goes_up(tmp_path):
    p, woken = stop_pipeline(with_wake_word=True)
    room = Room(p, gain_db=-60)                  # a quiet speaker: this is about the words
    p.play("item_1", reply24() * 2)
    p.finish()
    room.run(1.0)
    assert p.speaking
    room.run(2.5, said(tmp_path, "alexa"))
    assert room.listener.barge_ins == ["stop_word"] and not p.speaking
    assert p.stop_word.heard == 1 and woken == []          # not the wake word: no turn opens
    assert room.listener.sent == 0 and room.listener.started == 0


@needs_wake
def test_the_stop_word_means_nothing_while_the_device_is_quiet(tmp_path):
    p, woken = stop_pipeline(with_wake_word=True)
    room = Room(p)
    room.run(2.5, said(tmp_path, "alexa"))
    assert p.stop_word.heard == 0 and room.listener.barge_ins == [] and woken == []
    assert p.stop_word._words.fed_frames == 0             # not even run: it costs nothing then
    # the wake word still works beside it, and the stop word does not open the gate
    room.run(2.5, said(tmp_path, "hey jarvis"))
    assert [w.lower() for w in woken] == ["hey jarvis"]


@needs_wake
def test_in_push_to_talk_the_stop_word_stops_the_reply_hands_free(tmp_path):
    p, _ = stop_pipeline(with_wake_word=False, mode=TurnMode.PUSH_TO_TALK)
    room = Room(p, gain_db=-60)
    p.play("item_1", reply24() * 2)
    p.finish()
    room.run(1.0)
    room.run(2.5, said(tmp_path, "hey jarvis"))           # talking does not stop it in this mode
    assert room.listener.barge_ins == [] and p.speaking
    room.run(2.5, said(tmp_path, "alexa"))
    assert room.listener.barge_ins == ["stop_word"] and not p.speaking and room.listener.sent == 0


def test_the_stop_word_is_checked_in_the_config(tmp_path):
    assert cfg.parse({"wake": {"stop": "alexa"}}).wake.stop == "alexa"
    assert cfg.parse({"wake": {"stop": str(tmp_path / "stop.json")}}).wake.stop.endswith("stop.json")
    with pytest.raises(ConfigError, match=r"\[wake\] stop.*micro-wake-word-models"):
        cfg.parse({"wake": {"stop": "stop"}})
    with pytest.raises(ConfigError, match=r"\[wake\] stop_threshold"):
        cfg.parse({"wake": {"stop": "alexa", "stop_threshold": 1.5}})


def test_the_stop_word_has_its_own_threshold():
    from device.audio import build

    wake_config = cfg.parse({"wake": {"word": "hey_jarvis", "threshold": 0.9, "stop": "alexa", "stop_threshold": 0.6}}).wake
    try:
        stop, word = build.stop_detector(wake_config), build.wake_detector(wake_config)
    except ConfigError as exc:
        pytest.skip(str(exc))
    assert stop.threshold == 0.6 and word.threshold == 0.9
    assert build.stop_detector(cfg.parse({"wake": {"stop": "alexa"}}).wake).threshold == stop._model.probability_cutoff
