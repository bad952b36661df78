"""The voice gate and the turn modes on real speech; time is the frame count, so no clocks."""

import numpy as np
import pytest

from device.audio.turns import EchoGuard, TurnMode, TurnTaker
from device.audio.vad import VadSettings, level_db

from .helpers import clip16k, frames, silence16k, speech_onset_ms

CLIP = clip16k()
ROOM = silence16k(1000) + CLIP + silence16k(2000)


def run(taker, pcm16k=ROOM, playing=False, reference_db=-90.0):
    acts = [taker.frame(a, s, playing=playing, reference_db=reference_db) for a, _, s in frames(pcm16k)]
    return acts


def test_silence_sends_nothing_in_any_mode():
    for mode in TurnMode:
        if mode is TurnMode.CONTINUOUS:
            continue   # GPT-Live: the silence is the point (below)
        taker = TurnTaker(mode)
        acts = run(taker, silence16k(5000))
        assert not any(acts) and taker.bytes_sent == 0


def test_continuous_sends_every_frame_reports_speech_and_never_barges_in():
    taker = TurnTaker(TurnMode.CONTINUOUS)
    fr = frames(ROOM)
    acts = [taker.frame(a, s, playing=n > 100, reference_db=-60.0) for n, (a, _, s) in enumerate(fr)]
    assert [a.send for a in acts] == [[a24] for a24, _, _ in fr]          # all of it, silence included
    assert sum(a.speech_started for a in acts) == 1 and sum(a.speech_ended for a in acts) == 1
    assert not any(a.barge_in or a.commit or a.respond or a.clear for a in acts)
    taker.muted = True
    muted = run(taker)
    assert all(a.send == [bytes(len(a24))] for a, (a24, _, _) in zip(muted, fr))   # digital silence only
    assert not any(a.speech_started for a in muted)
    half = TurnTaker(TurnMode.CONTINUOUS, echo_guard=EchoGuard.HALF_DUPLEX)
    acts = [half.frame(a, s, playing=True, reference_db=-20.0) for a, _, s in fr]
    assert all(a.send == [bytes(len(a24))] and not a.speech_started for a, (a24, _, _) in zip(acts, fr))


def test_preroll_holds_the_onset_and_speech_is_sent_once():
    taker = TurnTaker(TurnMode.LOCAL_VAD, VadSettings(preroll_ms=300, hangover_ms=600))
    acts = run(taker)
    starts = [i for i, a in enumerate(acts) if a.speech_started]
    ends = [i for i, a in enumerate(acts) if a.speech_ended]
    assert len(starts) == 1 and len(ends) == 1
    first_sent_ms = (starts[0] + 1 - len(acts[starts[0]].send)) * 20
    onset = 1000 + speech_onset_ms(CLIP)
    assert first_sent_ms <= onset - 150  # audio from before the first syllable went up
    sent = b"".join(f for a in acts for f in a.send)
    assert taker.bytes_sent == len(sent)
    # all of the clip's speech, at 24 kHz, plus pre-roll and hangover: the right duration
    clip_ms = len(CLIP) // 32
    assert clip_ms - 600 <= len(sent) // 48 <= clip_ms + 300 + 600
    assert acts[ends[0]].commit and acts[ends[0]].respond


def test_server_vad_mode_keeps_the_silence_the_server_needs_and_no_more():
    taker = TurnTaker(TurnMode.SERVER_VAD, server_silence_ms=500)
    fr = frames(ROOM)
    acts = [taker.frame(a, s) for a, _, s in fr]
    assert not any(a.commit for a in acts)  # the server commits
    end = next(i for i, a in enumerate(acts) if a.speech_ended)
    last_speech = max(i for i, (_, _, s) in enumerate(fr[:end]) if s)
    trailing_ms = 20 * sum(len(a.send) for a in acts[last_speech + 1:end + 1])
    assert trailing_ms == 800  # the server's 500 ms of silence plus a 300 ms margin
    assert not any(a.send for a in acts[end + 1:])  # the rest of the silence is held back


def test_push_to_talk_sends_from_the_press_and_commits_on_release():
    taker = TurnTaker(TurnMode.PUSH_TO_TALK, hold_s=0.5)
    fr = frames(ROOM)
    onset_frame = (1000 + speech_onset_ms(CLIP)) // 20
    press_frame = onset_frame - 5        # pressed 100 ms before speaking
    hold_frame = press_frame + 25        # HOLD_START fires 500 ms after the press
    sent = []
    for i, (a, _, s) in enumerate(fr):
        if i == hold_frame:
            acts = taker.press(held_for_ms=500)
            assert acts.clear and acts.speech_started
            sent += acts.send
        sent += taker.frame(a, s).send
    done = taker.release()
    assert done.commit and done.respond
    first = fr.index(next(f for f in fr if f[0] == sent[0]))
    assert first <= press_frame  # nothing between the press and the hold was lost


def test_push_to_talk_too_short_is_cleared_not_committed():
    taker = TurnTaker(TurnMode.PUSH_TO_TALK)
    for a, _, s in frames(silence16k(200)):
        taker.frame(a, s)
    taker.press(held_for_ms=0)
    taker.frame(bytes(960), False)
    assert taker.release().clear and not taker.release().commit


def test_muted_sends_nothing_even_when_spoken_to():
    taker = TurnTaker(TurnMode.LOCAL_VAD)
    taker.muted = True
    assert not any(run(taker)) and taker.bytes_sent == 0


def _echo_and_voice(echo_gain_db, voice_gain_db):
    """What the mic hears while the device says the clip: its own echo, then a person over it."""
    clip = np.frombuffer(CLIP, "<i2").astype(np.float32)
    echo = np.concatenate([clip, clip]) * 10 ** (echo_gain_db / 20)
    voice = np.zeros_like(echo)
    voice[len(clip):] = clip * 10 ** (voice_gain_db / 20)
    return (np.clip(echo + voice, -32768, 32767).astype("<i2").tobytes(),
            np.concatenate([clip, clip]).astype("<i2").tobytes())


@pytest.mark.parametrize("guard, expect_barge_in_during_echo", [
    (EchoGuard.OFF, True), (EchoGuard.GUARDED, False), (EchoGuard.HALF_DUPLEX, False)])
def test_echo_guard_keeps_the_device_from_interrupting_itself(guard, expect_barge_in_during_echo):
    mic, played = _echo_and_voice(-6, -60)  # only the echo: nobody talks
    taker = TurnTaker(TurnMode.SERVER_VAD, echo_guard=guard)
    fr = frames(mic)
    ref = frames(played)
    barge = [taker.frame(a, s, playing=True, reference_db=level_db(r[0])).barge_in for (a, _, s), r in zip(fr, ref)]
    assert any(barge) == expect_barge_in_during_echo
    if guard is not EchoGuard.OFF:
        assert taker.bytes_sent == 0  # the server never hears our own voice


def test_guarded_barge_in_hears_a_person_over_the_echo():
    mic, played = _echo_and_voice(-12, +2)
    taker = TurnTaker(TurnMode.SERVER_VAD, echo_guard=EchoGuard.GUARDED)
    fr, ref = frames(mic), frames(played)
    barge = [i for i, ((a, _, s), r) in enumerate(zip(fr, ref))
             if taker.frame(a, s, playing=True, reference_db=max(level_db(x[0]) for x in ref[max(0, i - 9):i + 1])).barge_in]
    assert len(barge) == 1
    assert barge[0] * 20 >= len(CLIP) // 32  # not during the echo-only first half


def test_settings_are_checked():
    with pytest.raises(ValueError):
        VadSettings(frame_ms=10)
    with pytest.raises(ValueError):
        VadSettings(aggressiveness=4)


def test_a_reply_that_starts_during_the_hangover_learns_its_own_echo():
    """The echo guard learns each reply's echo in its first moments. A reply that begins while
    the person's turn is still in its hangover (a fast server) must learn afresh too, not
    keep the coupling of an earlier, louder reply, or the person cannot talk over it."""
    rng = np.random.default_rng(3)
    loud_echo = (rng.standard_normal(16000) * 32768 * 10 ** (-26 / 20)).astype("<i2").tobytes()
    taker = TurnTaker(TurnMode.SERVER_VAD, echo_guard=EchoGuard.GUARDED)
    reference_db = -20.0
    # An earlier reply heard loudly through the room (6 dB under what was played), then quiet.
    run(taker, loud_echo, playing=True, reference_db=reference_db)
    run(taker, silence16k(1500))
    # The person's turn; the reply to it starts at once, while the turn is in its hangover.
    run(taker, CLIP)
    assert taker.segmenter.in_speech
    run(taker, silence16k(1500), playing=True, reference_db=reference_db)   # no echo this time
    assert not taker.segmenter.in_speech
    # The person talks over this reply at their usual level: that is a barge-in.
    talk_over = run(taker, CLIP, playing=True, reference_db=reference_db)
    assert sum(a.barge_in for a in talk_over) == 1


def test_a_reply_fading_in_over_room_noise_does_not_teach_a_strong_echo():
    """Found by the soak: while a reply fades in, the microphone hears the room's noise, not
    the reply; learning from those frames took the noise for a strong echo (-11 dB) and a
    person talking over the reply was ignored. Only the loud part of the playback teaches."""
    rng = np.random.default_rng(5)
    taker = TurnTaker(TurnMode.SERVER_VAD, echo_guard=EchoGuard.GUARDED)
    noise = (rng.standard_normal(16000 * 3) * 32768 * 10 ** (-62 / 20)).astype("<i2").tobytes()
    # 120 ms of a quiet fade-in (-55 dBFS played), then the reply at -20 dBFS; no echo path at all.
    fade_in = run(taker, noise[: 32 * 120], playing=True, reference_db=-55.0)
    loud = run(taker, noise[32 * 120: 32 * 1500], playing=True, reference_db=-20.0)
    assert not any(a.barge_in for a in fade_in + loud)
    assert taker.segmenter.coupling_db is not None and taker.segmenter.coupling_db < -30
    # The person talks over the reply at their usual level: heard.
    talk_over = run(taker, CLIP, playing=True, reference_db=-20.0)
    assert sum(a.barge_in for a in talk_over) == 1


def test_the_trailing_silence_sent_while_a_reply_plays_is_silence():
    """server_vad: the reply starts in the person's trailing silence (the server ended their turn
    before the device's VAD did). What the microphone hears then is the device itself, which the
    canceller lets through while it converges; the server's VAD must not hear it as speech."""
    from device.audio.talkover import TalkOver

    taker = TurnTaker(TurnMode.SERVER_VAD, server_silence_ms=500, talk_over=TalkOver())
    fr = frames(silence16k(500) + CLIP)
    acts = [taker.frame(a, s) for a, _, s in fr]
    assert taker.segmenter.in_speech and sum(a.speech_started for a in acts) == 1
    leak = frames(clip16k("numbers.raw")[:16000 * 2])         # the reply, let through: speech
    assert sum(s for _, _, s in leak) > 20
    during = [taker.frame(a, s, playing=True, reference_db=-20.0, raw_db=level_db(a) + 3) for a, _, s in leak]
    sent = [f for a in during for f in a.send]
    assert sent and sum(a.speech_ended for a in during) == 1 and not any(a.barge_in for a in during)
    assert all(f == bytes(len(f)) for f in sent)              # silence: what the person said meanwhile


def test_level_db_is_the_rms_level_in_dbfs():
    t = np.arange(4800) / 48000
    sine = (32767 * np.sin(2 * np.pi * 1000 * t)).astype("<i2").tobytes()
    assert level_db(sine) == pytest.approx(-3.01, abs=0.01)                 # a full-scale sine
    assert level_db(np.full(320, -16384, "<i2").tobytes()) == pytest.approx(-6.02, abs=0.01)
    assert level_db(memoryview(sine)[:1920]) == pytest.approx(-3.01, abs=0.02)  # a view, not a copy
    assert level_db(bytes(640)) == level_db(b"") == -180.0                 # digital silence, nothing
