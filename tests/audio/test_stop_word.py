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


def stop_pipeline(*, with_wake_word: bool, mode: TurnMode = TurnMode.SERVER_VAD,
                  follow_up_s: float = 0.0) -> tuple[AudioPipeline, list[str]]:
    gate = WakeGate(WakeSettings(follow_up_s=follow_up_s)) if with_wake_word else None
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


@needs_wake
def test_after_the_stop_word_the_wake_word_is_needed_again(tmp_path):
    """A reply to a spoken turn opens the follow-up window; "stop" closes it, and nothing of the
    word is carried into the next turn."""
    p, woken = stop_pipeline(with_wake_word=True, follow_up_s=5.0)
    room = Room(p, gain_db=-60)
    room.run(4.0, np.concatenate([np.zeros(RATE // 2), flite48(tmp_path, "hey jarvis", "rms"), np.zeros(RATE // 5),
                                  flite48(tmp_path, "what time is it")]))
    assert room.listener.started == 1 and len(woken) == 1
    p.play("item_1", reply24() * 2)
    p.finish()
    room.run(1.0)
    room.run(2.5, said(tmp_path, "alexa"))
    assert room.listener.barge_ins == ["stop_word"]
    sent = room.listener.sent
    room.run(3.0, flite48(tmp_path, "and what day is it"))   # within the 5 s follow-up window
    assert room.listener.started == 1 and room.listener.sent == sent


@needs_wake
def test_muted_the_stop_word_is_not_heard(tmp_path):
    p, _ = stop_pipeline(with_wake_word=True)
    p.turns.muted = True
    room = Room(p, gain_db=-60)
    p.play("item_1", reply24() * 2)
    p.finish()
    room.run(1.0)
    room.run(2.5, said(tmp_path, "alexa"))
    assert room.listener.barge_ins == [] and p.speaking and p.stop_word.heard == 0


@needs_wake
def test_gpt_live_the_stop_word_stops_the_reply_and_the_stream_goes_on(tmp_path):
    """Continuous (GPT-Live): every frame goes up, the word's too (the model takes the turns):
    as much as from the same pipeline without a stop word."""
    word = said(tmp_path, "alexa")
    sent, barge_ins = [], []
    for stop in (True, False):
        p, _ = stop_pipeline(with_wake_word=False, mode=TurnMode.CONTINUOUS)
        if not stop:
            p.stop_word = None
        room = Room(p, gain_db=-60)
        p.play("item_1", reply24() * 2)
        p.finish()
        room.run(3.5, np.concatenate([np.zeros(RATE), word]))
        sent.append(room.listener.sent)
        barge_ins.append((room.listener.barge_ins, p.speaking))
    assert barge_ins == [(["stop_word"], False), ([], True)]
    assert sent[0] == sent[1] > 0


def test_the_stop_word_is_checked_in_the_config(tmp_path):
    assert cfg.parse({"wake": {"stop": "alexa"}}).wake.stop == "alexa"
    assert cfg.parse({"wake": {"stop": str(tmp_path / "stop.json")}}).wake.stop.endswith("stop.json")
    with pytest.raises(ConfigError, match=r"\[wake\] stop.*micro-wake-word-models"):
        cfg.parse({"wake": {"stop": "stop"}})
    with pytest.raises(ConfigError, match=r"\[wake\] stop_threshold.*0: the model's own"):
        cfg.parse({"wake": {"stop": "alexa", "stop_threshold": 1.5}})
    with pytest.raises(ConfigError, match=r"\[wake\] stop_threshold.*\[wake\] stop is empty"):
        cfg.parse({"wake": {"stop_threshold": 0.5}})
    with pytest.raises(ConfigError, match=r"\[wake\] stop.*the wake word too"):
        cfg.parse({"wake": {"word": "alexa", "stop": "alexa"}})


def test_the_stop_word_has_its_own_threshold():
    from device.audio import build

    wake_config = cfg.parse({"wake": {"word": "hey_jarvis", "threshold": 0.9, "stop": "alexa", "stop_threshold": 0.6}}).wake
    try:
        stop, word = build.stop_detector(wake_config), build.wake_detector(wake_config)
    except ConfigError as exc:
        pytest.skip(str(exc))
    assert stop.threshold == 0.6 and word.threshold == 0.9
    assert build.stop_detector(cfg.parse({"wake": {"stop": "alexa"}}).wake).threshold == stop._model.probability_cutoff
