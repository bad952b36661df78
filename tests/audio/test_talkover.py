"""Talk-over detection with an echo canceller (device/audio/talkover.py), frame by frame, and the
microphone's period following what the device does (device/audio/pipeline.py)."""

from __future__ import annotations

import numpy as np
import pytest

from device import config as cfg
from device.audio.pipeline import IDLE_AFTER_S, AudioPipeline
from device.audio.pipeline import IDLE_PERIOD_MS as DEFAULT_IDLE_MS
from device.audio.talkover import TalkOver
from device.audio.turns import EchoGuard, TurnMode, TurnTaker

from .helpers import clip16k

REPLY = -16.0      # dBFS of what the speaker plays


def echo(t: TalkOver, frames: int, *, raw: float = -24.0, clean: float = -78.0, speech: bool = False) -> list[bool]:
    return [t.person(clean, raw, REPLY, speech) for _ in range(frames)]


def test_a_person_over_a_cancelled_echo_is_heard():
    t = TalkOver()
    assert not any(echo(t, 15))                       # the canceller removes 54 dB of a loud echo
    assert t.trusted()
    assert t.person(-40.0, -28.0, REPLY, True)        # louder than the residual: a person


def test_an_echo_the_canceller_has_not_found_yet_is_never_a_person():
    """A reply after the echo's delay changed: AEC3 lets the device's voice through for a while,
    and webrtcvad calls it speech."""
    t = TalkOver()
    heard = echo(t, 60, raw=-20.0, clean=-26.0, speech=True)
    assert not any(heard) and not t.trusted()
    # once it cancels again, evidence builds up and the residual bar drops back: not at once
    # (what leaked fades from it), but a person 20 dB under the echo is heard soon after
    echo(t, 30)
    assert t.trusted() and t.floor_db() > -40.0
    echo(t, 12)
    assert t.person(-40.0, -28.0, REPLY, True)


def test_a_residual_long_after_a_leak_is_still_no_person():
    """Bench trace (-6 dB): AEC3 leaked the device's voice at -33 dBFS while it converged at the
    start of a reply; 700 ms later it left a -60 dBFS residual that webrtcvad called speech.
    The bar did not fall to the floor with the leak out of the window: it fades."""
    t = TalkOver()
    echo(t, 3, raw=-22.0, clean=-33.0, speech=True)       # the leak
    echo(t, 32, raw=-25.0, clean=-94.0)                   # then cancelled
    assert t.trusted()
    assert t.floor_db() > -50.0
    assert not t.person(-60.0, -27.0, REPLY, True)
    assert t.person(-30.0, -20.0, REPLY, True)            # a person at the echo's level is heard


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
    assert t.person(-40.0, -28.0, REPLY, True)


def test_a_person_not_yet_heard_does_not_count_against_the_canceller():
    """Their first words over the reply (below the bar, or not yet long enough) are speech the
    canceller did not remove: that must not end the trust it has earned."""
    t = TalkOver()
    echo(t, 15)
    for _ in range(40):
        t.person(-75.0, -20.0, REPLY, True)   # speech, hardly attenuated, too quiet to be a person
    assert t.trusted()
    assert t.person(-40.0, -28.0, REPLY, True)


def test_a_new_reply_needs_new_evidence():
    t = TalkOver()
    echo(t, 15)
    t.reply_started()
    assert not t.trusted() and not t.person(-40.0, -28.0, REPLY, True)


@pytest.mark.parametrize("configured", [None, 300])
def test_the_microphone_hands_over_more_at_a_time_when_nothing_happens(configured):
    now = [100.0]
    periods: list[int] = []
    # as the app builds it: from the config (its default is the pipeline's own)
    audio = cfg.parse({"audio": {"idle_period_ms": configured}} if configured else {}).audio
    quiet = configured or DEFAULT_IDLE_MS             # the silent room's period
    p = AudioPipeline(TurnTaker(TurnMode.SERVER_VAD), clock=lambda: now[0], mic_period_ms=50,
                      idle_period_ms=audio.idle_period_ms)
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
    assert periods == [quiet]                         # a silent room: a long period, few wake-ups
    speech = clip16k("goforward.raw")
    run(len(speech) / 32000, speech)
    assert periods == [quiet]                         # never changed in the middle of a turn
    p.speaker_opened(24000)
    p.play("item_1", np.zeros(2400, "<i2").tobytes())
    assert periods == [quiet, 50]                     # a reply: a person talking over it is heard soon


def quiet_room(t: TalkOver, level: float, frames: int = 50) -> None:
    for _ in range(frames):
        t.room(level)
    t.reply_started()


def test_in_a_noisy_room_without_an_echo_path_it_is_trusted_after_a_while():
    """A headset (or a speaker far away) in a room with a fan: the microphone hears the fan,
    which no canceller removes; that is not an echo it failed to remove."""
    t = TalkOver()
    quiet_room(t, -58.0)
    assert t.noise_db == -58.0
    echo(t, 50, raw=-57.0, clean=-57.5)
    assert t.trusted()
    assert t.person(-36.0, -35.0, REPLY, True)


def test_in_a_noisy_room_an_echo_removed_down_to_the_noise_counts_as_removed():
    t = TalkOver()
    quiet_room(t, -60.0)
    echo(t, 15, raw=-45.0, clean=-58.0)              # 13 dB: all there was above the room
    assert t.trusted()
    assert t.person(-40.0, -38.0, REPLY, True)


def test_in_a_noisy_room_an_echo_the_canceller_lets_through_is_still_no_person():
    t = TalkOver()
    quiet_room(t, -60.0)
    heard = echo(t, 60, raw=-40.0, clean=-43.0, speech=True)
    assert not any(heard)
    echo(t, 20, raw=-40.0, clean=-44.0)               # not speech, but not removed either
    assert not t.trusted()
    assert not t.person(-30.0, -28.0, REPLY, True)


def test_the_rooms_noise_is_a_low_percentile_of_its_quiet_frames():
    t = TalkOver()
    for i in range(100):
        t.room(-20.0 if i % 10 == 0 else -62.0)      # a door now and then
    t.reply_started()
    assert t.noise_db == -62.0


def test_the_turn_taker_measures_the_room_while_nothing_plays():
    noise = (np.random.default_rng(1).standard_normal(16000) * 32768 * 10 ** (-55 / 20)).astype("<i2")
    talk_over = TalkOver()
    taker = TurnTaker(TurnMode.SERVER_VAD, talk_over=talk_over)
    for i in range(50):
        taker.frame(noise[i * 320:(i + 1) * 320].tobytes(), False, playing=False)
    taker.frame(noise[:320].tobytes(), False, playing=True, reference_db=REPLY, raw_db=-54.0)
    assert talk_over.noise_db is not None and -57.0 < talk_over.noise_db < -53.0


def test_a_stray_audible_frame_does_not_keep_a_path_without_echo_from_being_trusted():
    """The first quiet sound of a person (or a door) before their words is one frame of
    'echo' the canceller did not remove: too little to judge it by."""
    t = TalkOver()
    quiet_room(t, -62.0)
    echo(t, 20, raw=-61.0, clean=-66.0)
    t.person(-66.0, -49.0, REPLY, False)              # the person's breath: audible, not removed
    echo(t, 30, raw=-61.0, clean=-66.0)
    assert t.trusted()
    assert t.person(-40.0, -33.0, REPLY, True)


def test_a_canceller_that_lets_the_echo_through_is_not_taken_for_a_path_without_echo():
    """AEC3 lost the echo: the device's voice comes through as what webrtcvad calls speech (no
    evidence either way), with a quiet frame now and then (a word's start, before its echo
    arrives). However long that goes on, the microphone was loud: there is an echo path."""
    t = TalkOver()
    quiet_room(t, -90.0)
    for _ in range(25):                               # 2.5 s of reply
        echo(t, 2, raw=-95.0, clean=-95.0)            # before the echo arrives
        echo(t, 3, raw=-26.0, clean=-30.0, speech=True)
    assert not t.trusted()
    assert not t.person(-28.0, -24.0, REPLY, True)


def test_what_the_canceller_removed_most_of_is_no_person_however_loud():
    """Bench trace (-6 dB): 100 ms into the echo, before any residual had raised the bar, AEC3
    left -55 dBFS of a -25 dBFS echo and webrtcvad called it speech."""
    t = TalkOver()
    echo(t, 20, raw=-75.0, clean=-75.0)              # the reply's quiet start: no echo yet
    echo(t, 12, raw=-22.0, clean=-85.0)              # the echo, removed
    assert t.trusted() and t.floor_db() < -55.0
    assert not t.person(-55.0, -25.0, REPLY, True)     # 30 dB removed: what it left of the echo
    assert t.person(-24.0, -21.0, REPLY, True)         # a person: passed through


def test_a_canceller_that_leaks_mid_reply_is_not_a_person():
    """Bench trace (-6 dB, 2026-11-27): 0.7 s into a reply AEC3, which had been taking 30-60 dB
    off a -23 dBFS echo, let it rise over four frames to -42 dBFS: 19 and 22 dB removed, above a
    residual bar of -45 dBFS. With a person at the echo's level the canceller takes 0-14 dB off
    (the person passes, the echo under them goes)."""
    t = TalkOver()
    echo(t, 12, raw=-96.0, clean=-96.0)              # before the echo arrives
    echo(t, 25, raw=-22.0, clean=-82.0)              # the echo, removed
    for raw, clean in ((-39.8, -75.6), (-26.5, -62.5), (-22.8, -55.0)):
        t.person(clean, raw, REPLY, True)
    assert t.trusted() and t.floor_db() < -42.1
    assert not t.person(-42.1, -23.0, REPLY, True)     # 19 dB removed: the leak
    assert not t.person(-44.2, -22.2, REPLY, True)     # 22 dB
    assert t.person(-30.0, -21.0, REPLY, True)         # a person: the canceller passes their voice
    assert t.person(-36.3, -22.5, REPLY, True)         # 14 dB: the most a person at the echo's level lost


def test_a_leak_the_canceller_still_takes_15_db_off_is_not_a_person():
    """Bench trace (0 dB, 2026-11-27): 0.3 s into a reply, before AEC3 had converged, what it
    left rose over five frames to -33 dBFS of a -19 dBFS echo (17 and 15 dB removed) and stopped
    the reply. A person starts with a frame the canceller passes nearly whole (at most
    ``person_whole_db`` off: 0-11 dB in the traces); after that, frames it takes up to
    ``person_removed_db`` off go on being the person."""
    t = TalkOver()
    echo(t, 10, raw=-96.0, clean=-96.0)
    echo(t, 10, raw=-19.0, clean=-80.0)
    for raw, clean in ((-18.9, -68.4), (-19.6, -65.3), (-20.1, -60.7), (-18.9, -44.2)):
        t.person(clean, raw, REPLY, True)
    assert t.trusted() and t.floor_db() < -35.6
    assert not t.person(-35.6, -18.6, REPLY, True)     # 17 dB: the leak
    assert not t.person(-33.1, -18.0, REPLY, True)     # 15 dB
    assert t.person(-24.0, -14.0, REPLY, True)         # a person starts: 10 dB
    assert t.person(-31.0, -16.0, REPLY, True)         # and goes on: 15 dB
    assert not t.person(-90.0, -20.0, REPLY, False)    # a pause
    assert not t.person(-33.1, -18.0, REPLY, True)     # 15 dB again: a new start needs a whole frame


def test_a_person_over_a_reply_that_began_with_a_leak_is_heard():
    """Bench trace (-6 dB, 2026-11-27): AEC3 leaked the first frames of a reply, so webrtcvad
    called every frame after the canceller speech (hangover), until a person talked over it
    0.5 s in. The frames the canceller took 30-50 dB off show that it works, speech or not."""
    t = TalkOver()
    echo(t, 5, raw=-96.0, clean=-96.0)
    for raw, clean in ((-24.0, -33.0), (-25.0, -40.0), (-48.1, -71.5), (-35.6, -79.4), (-25.1, -69.1),
                       (-24.9, -60.8), (-25.9, -75.3), (-26.0, -67.3), (-24.6, -57.4), (-24.5, -53.7),
                       (-24.0, -43.7), (-24.5, -54.0), (-26.2, -92.8), (-32.9, -92.6)):
        assert not t.person(clean, raw, REPLY, True)
    assert t.trusted()
    # the person: 3.4 dB off, 9 dB over the leak (under its bar of -23 before the sure margin)
    assert t.person(-23.8, -20.4, REPLY, True)
    assert t.person(-21.5, -21.2, REPLY, True)
    assert not t.person(-28.0, -18.0, REPLY, True)     # 10 dB off: the leak's bar still holds
    assert t.person(-21.0, -19.8, REPLY, True)


def test_speech_the_canceller_passed_is_no_evidence_against_it():
    t = TalkOver()
    echo(t, 15)                                        # cancelled: trusted
    assert t.trusted()
    for _ in range(30):                                # a person talking on and on
        t.person(-30.0, -22.0, REPLY, True)
    assert t.trusted()


def test_a_person_early_in_a_reply_without_an_echo_path_is_heard():
    """A headset (or the echo path muted): a person who talks 0.5 s into the reply."""
    t = TalkOver()
    echo(t, 25, raw=-96.0, clean=-95.0)
    assert t.person(-22.0, -21.0, REPLY, True)


def tone_frame(db: float) -> bytes:
    """20 ms at 16 kHz, this loud (dBFS)."""
    t = np.arange(320) / 16000
    return (np.sin(2 * np.pi * 300 * t) * 32768 * 10 ** (db / 20) * np.sqrt(2)).astype("<i2").tobytes()


def over_a_cancelled_reply(person: list[tuple[float, float]]) -> list[bool]:
    """A turn taker wired as the daemon wires it with a canceller (no echo guard), the canceller
    trusted (15 frames of echo 54 dB down), then the person's frames as (clean dBFS, raw dBFS):
    which of them stopped the reply."""
    talk_over = TalkOver()
    taker = TurnTaker(TurnMode.SERVER_VAD, echo_guard=EchoGuard.OFF, talk_over=talk_over)
    for _ in range(15):
        assert not taker.frame(tone_frame(-78.0), False, playing=True, reference_db=REPLY, raw_db=-24.0).barge_in
    assert talk_over.trusted()
    return [taker.frame(tone_frame(clean), True, playing=True, reference_db=REPLY, raw_db=raw).barge_in
            for clean, raw in person]


def test_a_person_the_canceller_left_whole_stops_the_reply_at_their_first_frame():
    """Bench traces: a person's first frame often lost 0-3 dB to the canceller (it removes the
    echo under their voice, not the voice); no leak of a trusted canceller lost less than 6.
    Waiting for a second frame cost a capture period (50 ms) whenever the two straddled one."""
    assert over_a_cancelled_reply([(-30.0, -29.0), (-30.0, -29.0)]) == [True, False]


def test_a_person_the_canceller_took_more_off_needs_a_second_frame():
    """The bench's leaks of a trusted canceller lost 6-10 dB (one frame at a time): one frame
    like that is not enough; a person who goes on is heard at their second."""
    assert over_a_cancelled_reply([(-30.0, -22.0), (-40.0, -30.0)]) == [False, True]
    assert over_a_cancelled_reply([(-30.0, -22.0), (-80.0, -24.0)]) == [False, False]


def test_sure_is_only_a_person_the_canceller_barely_touched():
    t = TalkOver()
    echo(t, 15)
    assert t.person(-30.0, -27.0, REPLY, True) and t.sure          # 3 dB off
    assert t.person(-30.0, -24.0, REPLY, True) and not t.sure      # 6 dB off: a person, not beyond doubt
    assert not t.person(-95.0, -95.0, REPLY, False) and not t.sure


def test_a_person_the_canceller_left_whole_needs_less_margin_over_its_residual():
    """Where the canceller removes little (0 and -6 dB in the real-time bench) its residual
    raised the bar to -16..-19 dBFS and a person at the echo's level, their first frames 1-3 dB
    off, waited 40-100 ms for it to fade. A frame left whole needs 5 dB over the residual, not
    10; one the canceller took more off still needs the 10."""
    def residual() -> TalkOver:
        t = TalkOver()
        echo(t, 15)                                   # trusted
        echo(t, 3, raw=-22.0, clean=-34.0)            # then only 12 dB removed: the bar is at -24
        echo(t, 5)
        assert t.trusted() and t.floor_db() == -24.0
        return t

    t = residual()
    assert t.person(-27.0, -25.0, REPLY, True) and t.sure      # 2 dB off, 7 dB over the residual
    t = residual()
    assert not t.person(-27.0, -19.0, REPLY, True)             # 8 dB off: the usual bar
    assert not t.person(-31.0, -29.0, REPLY, True)             # whole, but only 3 dB over the residual
    assert t.person(-23.0, -15.0, REPLY, True)                 # over the usual bar


def test_a_reply_that_plays_on_after_a_hold_must_show_the_canceller_works_again():
    """Trace of 2026-11-28 (-18 dB): 0.2 s after a held talk-over was dismissed and the reply
    played on, AEC3 passed the echo whole (0-1 dB off, -37 dBFS) while still trusted."""
    t = TalkOver()
    echo(t, 20)
    assert t.trusted()
    t.resumed()
    assert not t.trusted()
    leak = [t.person(-37.0, -37.0, REPLY, True) for _ in range(10)]
    assert not any(leak) and not t.trusted()
    echo(t, 20)                                       # cancelled again: a person is heard
    assert t.trusted() and t.person(-20.0, -19.0, REPLY, True)


def test_the_turn_taker_tells_the_detector_when_a_reply_plays_on_after_a_hold():
    talk_over = TalkOver()
    taker = TurnTaker(TurnMode.SERVER_VAD, echo_guard=EchoGuard.OFF, talk_over=talk_over)
    for _ in range(20):
        taker.frame(tone_frame(-78.0), False, playing=True, reference_db=REPLY, raw_db=-24.0)
    assert talk_over.trusted()
    taker.dismiss(reply_plays_on=False)               # the reply was stopped otherwise
    assert talk_over.trusted()
    taker.dismiss(reply_plays_on=True)
    assert not talk_over.trusted()


def test_the_lower_bar_of_a_whole_frame_leaves_a_faded_leak_where_it_was():
    """A leak that left the window still holds the bar 10 dB under it, for a frame left whole
    too: only the margin over the recent residual is smaller (review of the sure margin)."""
    t = TalkOver()
    echo(t, 20)
    echo(t, 3, raw=-22.0, clean=-33.0, speech=True)      # the leak
    echo(t, 31, raw=-25.0, clean=-94.0)                   # out of the window, fading
    assert t.trusted()
    memory_bar = t.floor_db()
    assert -45.0 < memory_bar < -42.0 and t.floor_db(5.0) == memory_bar
    assert not t.person(memory_bar - 3.0, memory_bar - 2.0, REPLY, True)   # whole, but under it
    assert t.person(memory_bar + 1.0, memory_bar + 2.0, REPLY, True) and t.sure


def test_a_frame_the_canceller_did_not_run_on_is_never_left_whole():
    t = TalkOver()
    echo(t, 15)
    echo(t, 3, raw=-22.0, clean=-34.0)
    echo(t, 5)
    assert t.floor_db() == -24.0
    assert not t.person(-27.0, None, REPLY, True) and not t.sure   # whole-looking, but not cancelled
    assert t.person(-22.0, None, REPLY, True) and not t.sure       # over the usual bar: a person


def test_a_resume_keeps_the_residuals_bar():
    t = TalkOver()
    echo(t, 15)
    echo(t, 3, raw=-22.0, clean=-34.0)
    bar = t.floor_db()
    t.resumed()
    assert t.floor_db() == bar
