"""Talk-over detection with an echo canceller (device/audio/talkover.py), frame by frame, and the
microphone's period following what the device does (device/audio/pipeline.py)."""

from __future__ import annotations

import numpy as np

from device.audio.pipeline import IDLE_AFTER_S, IDLE_PERIOD_MS, AudioPipeline
from device.audio.talkover import TalkOver
from device.audio.turns import TurnMode, TurnTaker

from .helpers import clip16k

REPLY = -16.0      # dBFS of what the speaker plays


def echo(t: TalkOver, frames: int, *, raw: float = -24.0, clean: float = -78.0, speech: bool = False) -> list[bool]:
    return [t.person(clean, raw, REPLY, speech) for _ in range(frames)]


def test_a_person_over_a_cancelled_echo_is_heard():
    t = TalkOver()
    assert not any(echo(t, 15))                       # the canceller removes 54 dB of a loud echo
    assert t.trusted()
    assert t.person(-40.0, -20.0, REPLY, True)        # louder than the residual: a person


def test_an_echo_the_canceller_has_not_found_yet_is_never_a_person():
    """A reply after the echo's delay changed: AEC3 lets the device's voice through for a while,
    and webrtcvad calls it speech."""
    t = TalkOver()
    heard = echo(t, 60, raw=-20.0, clean=-26.0, speech=True)
    assert not any(heard) and not t.trusted()
    # once it cancels again, evidence builds up and the residual bar drops back
    echo(t, 30)
    assert t.trusted() and t.person(-40.0, -20.0, REPLY, True)


def test_without_an_echo_path_it_is_trusted_after_a_while():
    t = TalkOver()
    assert not any(echo(t, 10, raw=-95.0, clean=-95.0))       # a headset: nothing comes back
    assert not t.person(-40.0, -40.0, REPLY, True)              # too early to tell
    echo(t, 40, raw=-95.0, clean=-95.0)
    assert t.person(-40.0, -40.0, REPLY, True)


def test_a_person_must_be_louder_than_what_the_canceller_left():
    t = TalkOver()
    echo(t, 20, raw=-24.0, clean=-55.0)              # a noisy residual, 31 dB under the echo
    assert t.floor_db() == -45.0
    assert not t.person(-48.0, -22.0, REPLY, True)
    assert t.person(-40.0, -20.0, REPLY, True)


def test_a_person_not_yet_heard_does_not_count_against_the_canceller():
    """Their first words over the reply (below the bar, or not yet long enough) are speech the
    canceller did not remove: that must not end the trust it has earned."""
    t = TalkOver()
    echo(t, 15)
    for _ in range(40):
        t.person(-75.0, -20.0, REPLY, True)   # speech, hardly attenuated, too quiet to be a person
    assert t.trusted()
    assert t.person(-40.0, -20.0, REPLY, True)


def test_a_new_reply_needs_new_evidence():
    t = TalkOver()
    echo(t, 15)
    t.reply_started()
    assert not t.trusted() and not t.person(-40.0, -20.0, REPLY, True)


def test_the_microphone_hands_over_more_at_a_time_when_nothing_happens():
    now = [100.0]
    periods: list[int] = []
    p = AudioPipeline(TurnTaker(TurnMode.SERVER_VAD), clock=lambda: now[0], mic_period_ms=50)
    p.set_mic_period = periods.append
    p.mic_opened(16000, 1)
    silence = bytes(1600)                             # 50 ms

    def run(seconds: float, pcm: bytes = silence) -> None:
        for i in range(0, int(seconds * 20)):
            now[0] += 0.05
            p.on_mic(pcm[i * 1600:(i + 1) * 1600] if len(pcm) > 1600 else pcm)

    run(IDLE_AFTER_S - 0.5)
    assert periods == []                              # not yet
    run(1.0)
    assert periods == [IDLE_PERIOD_MS]                # a silent room: ten wake-ups a second
    speech = clip16k("goforward.raw")
    run(len(speech) / 32000, speech)
    assert periods == [IDLE_PERIOD_MS]                # never changed in the middle of a turn
    p.speaker_opened(24000)
    p.play("item_1", np.zeros(2400, "<i2").tobytes())
    assert periods == [IDLE_PERIOD_MS, 50]            # a reply: a person talking over it is heard soon
