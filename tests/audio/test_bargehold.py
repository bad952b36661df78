"""Talk-over, confirmed (device/audio/bargehold.py): the reply goes silent at the first frames of
speech over it, and is cancelled only if somebody goes on talking into the silence; otherwise
it plays on from where it was cut off, and nothing went up.

Real speech and webrtcvad throughout; the speaker is read by hand, 20 ms at a time, as its
thread would, and the microphone is fed 20 ms at a time at 16 kHz."""

from __future__ import annotations

import numpy as np
import pytest

from device.audio import aec
from device.audio.bargehold import BargeHold, HoldSettings, Verdict
from device.audio.pipeline import AudioPipeline
from device.audio.playback import PlaybackBuffer
from device.audio.turns import Actions, EchoGuard, TurnMode, TurnTaker
from hardware.interfaces import Gap

from .helpers import clip16k

RATE = 24000                 # the speaker's rate here (no resampling of the reply)
PERIOD = RATE // 50 * 2      # 20 ms of it, in bytes
MIC = 16000 // 50 * 2        # 20 ms of microphone, in bytes


class Listener:
    def __init__(self) -> None:
        self.sent = 0
        self.started = 0
        self.barge_ins: list[tuple[str, dict[str, int]]] = []

    def turn(self, actions) -> None:
        self.sent += sum(len(f) for f in actions.send)
        self.started += actions.speech_started

    def barged_in(self, cause, played_ms) -> None:
        self.barge_ins.append((cause, played_ms))

    def playback_started(self, item_id) -> None:
        pass

    def playback_drained(self) -> None:
        pass


def reply() -> bytes:
    """Three seconds of a reply that is different everywhere (so a replayed piece is found)."""
    rng = np.random.default_rng(3)
    return (rng.standard_normal(RATE * 3) * 3000).astype("<i2").tobytes()


class Device:
    def __init__(self, canceller: aec.EchoCanceller | None = None) -> None:
        self.pipeline = p = AudioPipeline(TurnTaker(TurnMode.SERVER_VAD, echo_guard=EchoGuard.OFF),
                                          clock=lambda: 100.0, canceller=canceller)
        self.hushed = 0
        p.speaker_lead = lambda: 0.06            # the speaker's buffer holds 60 ms
        p.hush_speaker = self.hush
        self.woken = 0
        p.wake_speaker = self.wake
        p.speaker_opened(RATE)
        p.mic_opened(16000, 1)
        self.listener = Listener()
        p.listener = self.listener
        self.reply = reply()
        p.play("item_1", self.reply)
        p.finish()
        self.heard = bytearray()

    def hush(self) -> None:
        self.hushed += 1

    def wake(self) -> None:
        self.woken += 1

    def step(self, mic: bytes) -> None:
        self.heard += self.pipeline.read(PERIOD)
        self.pipeline.on_mic(mic)

    def talk_until_held(self, speech: bytes) -> bytes:
        """Speech over the reply until it goes silent; the rest of the speech."""
        for at in range(0, len(speech), MIC):
            self.step(speech[at:at + MIC])
            if self.pipeline.playback.held:
                return speech[at + MIC:]
        raise AssertionError("the speech never stopped the reply")


def speech() -> bytes:
    pcm = clip16k("goforward.raw")
    x = np.frombuffer(pcm, "<i2")
    first = int(np.argmax(np.abs(x) > 1000)) // (MIC // 2) * MIC     # from just before the first word
    return pcm[max(0, first - 5 * MIC):]


def test_speech_that_stops_with_the_speaker_is_dismissed_and_the_reply_plays_on():
    d = Device()
    for _ in range(25):                      # half a second of the reply, nobody talking
        d.step(bytes(MIC))
    d.talk_until_held(speech()[:3 * MIC + 2 * MIC * 5])   # a burst of speech that stops with the speaker
    cut = len(d.heard)
    assert d.hushed == 1
    woken = d.woken
    for _ in range(25):                      # silence: nobody goes on
        d.step(bytes(MIC))
    assert not d.pipeline.playback.held and d.pipeline.speaking
    assert d.pipeline.counters.talk_over_dismissed == 1
    assert d.woken == woken + 1              # a speaker that paused meanwhile starts again
    assert d.listener.barge_ins == [] and d.listener.sent == 0 and d.listener.started == 0
    # the 60 ms the speaker's buffer held when it was cut off are played again, then the rest
    replayed = d.heard[cut:]
    assert replayed[:PERIOD * 3] == d.reply[cut - 3 * PERIOD:cut]
    for _ in range(200):
        d.step(bytes(MIC))
    assert not d.pipeline.speaking           # it played to its end
    assert len(d.heard) == len(d.reply) + 3 * PERIOD


def test_a_person_who_goes_on_talking_cancels_the_reply_from_what_was_heard():
    d = Device()
    for _ in range(25):
        d.step(bytes(MIC))
    rest = d.talk_until_held(speech())
    heard_ms = len(d.heard) * 1000 // (2 * RATE) - 60       # the speaker's buffer was not heard
    assert d.listener.barge_ins == [] and d.listener.sent == 0   # not yet: nothing went up
    fed = 0
    while not d.listener.barge_ins:
        d.step(rest[fed:fed + MIC])
        fed += MIC
        assert fed < 20 * MIC, "the person was never confirmed"
    assert d.listener.barge_ins == [("voice", {"item_1": heard_ms})]
    assert not d.pipeline.speaking and d.listener.started == 1
    # everything from the pre-roll on went up at once (24 kHz): nothing said was dropped
    assert d.listener.sent >= (fed // MIC + 5) * (RATE // 50 * 2)
    assert d.pipeline.counters.talk_over_dismissed == 0 and d.pipeline.counters.local_barge_ins == 1


def test_the_button_overtakes_a_held_talk_over():
    d = Device()
    for _ in range(25):
        d.step(bytes(MIC))
    d.talk_until_held(speech()[:15 * MIC])
    heard_ms = len(d.heard) * 1000 // (2 * RATE) - 60       # the buffer came off once, at the hold
    d.pipeline.interrupt("button")
    for _ in range(25):
        d.step(bytes(MIC))
    assert d.listener.barge_ins == [("button", {"item_1": heard_ms})]
    assert d.listener.sent == 0 and not d.pipeline.speaking
    assert d.pipeline.counters.talk_over_dismissed == 0 and d.hushed == 1


@pytest.mark.parametrize("overtaken_by", ["speaker_closed", "reply_timeout", "rotation"])
def test_a_hold_overtaken_by_anything_but_the_person_sends_what_was_said(overtaken_by):
    d = Device()
    for _ in range(25):
        d.step(bytes(MIC))
    d.talk_until_held(speech())
    heard_ms = len(d.heard) * 1000 // (2 * RATE) - 60
    if overtaken_by == "speaker_closed":     # unplugged: no reply to go back to
        d.pipeline.speaker_closed()
        cause = "voice"
    else:
        d.pipeline.interrupt(overtaken_by)
        cause = overtaken_by
    assert d.listener.barge_ins == [(cause, {"item_1": heard_ms})]
    assert d.listener.started == 1 and d.listener.sent > 0 and not d.pipeline.speaking
    assert d.hushed == 1 and d.pipeline.counters.talk_over_dismissed == 0


def test_a_quiet_person_is_confirmed_with_an_echo_canceller_running():
    """The canceller's echo-tail floor (-52 dBFS) is for the end of a reply, not for a hold."""
    if not aec.available("speex"):
        pytest.skip("libspeexdsp is not installed")
    d = Device(aec.create("speex"))
    for _ in range(25):
        d.step(bytes(MIC))
    quiet = (np.frombuffer(speech(), "<i2") * 10 ** (-34 / 20)).astype("<i2").tobytes()   # ~-57 dBFS
    rest = d.talk_until_held(quiet)
    for at in range(0, 25 * MIC, MIC):
        d.step(rest[at:at + MIC])
    assert [cause for cause, _ in d.listener.barge_ins] == ["voice"]
    assert d.pipeline.counters.talk_over_dismissed == 0


def test_after_a_dismissal_the_reply_is_the_same_reply_to_the_echo_guard():
    """What the guard learned of this reply's echo is kept: the held frames went by as not
    playing, but the reply did not start again."""
    turns = TurnTaker(TurnMode.SERVER_VAD, echo_guard=EchoGuard.GUARDED)
    hum = (np.sin(np.arange(320) * 0.3) * 300).astype("<i2").tobytes()     # the echo, -44 dBFS
    for _ in range(30):                      # 600 ms of reply: the coupling is learned
        turns.frame(hum, False, playing=True, reference_db=-20.0)
    learned = turns.segmenter.coupling_db
    assert learned is not None
    for _ in range(5):                       # a hold
        turns.frame(bytes(640), False, playing=False)
    turns.dismiss(reply_plays_on=True)
    # somebody talks over the reply right after: heard after the guard's 240 ms, without
    # learning the echo for another 400 ms first
    loud = (np.random.default_rng(5).standard_normal(320) * 5000).astype("<i2").tobytes()   # -16 dBFS
    frames = 0
    while not turns.frame(loud, True, playing=True, reference_db=-20.0).barge_in:
        frames += 1
        assert frames < 15, "the guard learned the reply's echo all over again"
    assert turns.segmenter.coupling_db == learned


def test_playback_hold_queues_the_unheard_audio_again_and_counts_only_what_was_heard():
    buf = PlaybackBuffer(RATE, prebuffer_ms=0)
    pcm = reply()
    buf.push("a", pcm[:RATE])                # 500 ms of item a
    buf.push("b", pcm[RATE:])
    out = b"".join(buf.read(PERIOD) for _ in range(26))   # 520 ms: 20 ms into b
    assert buf.hold(60) == 60 and buf.held
    assert buf.read(PERIOD) == b"" and buf.active          # silent, still speaking
    buf.resume()
    assert buf.read(PERIOD * 3) == out[-PERIOD * 3:]        # 40 ms of a, 20 of b again
    assert buf.flush() == {"a": 500, "b": 20}


def verdicts(hold: BargeHold, frames: list[tuple[bool, float]]) -> list[Verdict]:
    return [hold.frame(speech, db, Actions()) for speech, db in frames]


def test_the_hold_waits_out_the_echos_tail_then_needs_speech_as_loud_as_the_onset():
    settings = HoldSettings()          # 120 ms to settle, then 40 ms of speech within 300 ms
    loud = (True, -30.0)
    assert verdicts(BargeHold(settings, onset_db=-30.0), [loud] * 8) == [Verdict.WAIT] * 7 + [Verdict.CONFIRM]
    # a gap between two words (the person's first word ended in the settling time)
    gap = [(True, -32.0)] * 3 + [(False, -75.0)] * 7 + [(True, -31.0)] * 2
    assert verdicts(BargeHold(settings, onset_db=-33.0), gap)[-1] is Verdict.CONFIRM
    # webrtcvad's own hangover calls digital silence speech: not a person
    quiet = (True, -180.0)
    v = verdicts(BargeHold(settings, onset_db=-30.0), [quiet] * 21)
    assert v[:-1] == [Verdict.WAIT] * 20 and v[-1] is Verdict.DISMISS
    # a turn started by webrtcvad's hangover alone (onset: digital silence) is not a person either
    v = verdicts(BargeHold(settings, onset_db=-180.0), [quiet] * 21)
    assert v[-1] is Verdict.DISMISS and Verdict.CONFIRM not in v
    # the turn ends by itself: dismissed at once
    assert BargeHold(settings).frame(True, -30.0, Actions(speech_ended=True)) is Verdict.DISMISS


def test_what_was_kept_goes_up_as_one_turn_in_order():
    hold = BargeHold(onset_db=-30.0)
    hold.keep(Actions(send=[b"a", b"b"], speech_started=True, barge_in=True))
    hold.frame(True, -30.0, Actions(send=[b"c"]))
    merged = hold.merged()
    assert merged.send == [b"a", b"b", b"c"] and merged.speech_started and not merged.barge_in


def test_each_capture_period_is_followed_by_the_after_period_hook():
    """What the LEDs draw a pulse's frame on (hardware.leds.LedAnimator.tick): once per period,
    with its time, after the period's decisions."""
    d = Device()
    seen: list[tuple[float, bool]] = []
    d.pipeline.after_period = lambda now: seen.append((now, d.pipeline.speaking))
    for _ in range(3):
        d.step(bytes(MIC))
    assert seen == [(100.0, True)] * 3


def test_only_an_overflow_counts_as_one_and_every_gap_resets_the_microphone_clock():
    """A reopen at another period (Gap.REOPEN) is no overflow in the counters an admin reads;
    both take the microphone's clock afresh."""
    d = Device()
    resets: list[bool] = []
    stamp = d.pipeline._mic_clock.stamp
    d.pipeline._mic_clock.stamp = lambda now, n, reset=False: (resets.append(reset), stamp(now, n, reset=reset))[1]
    for gap in (Gap.NONE, Gap.REOPEN, Gap.NONE, Gap.OVERFLOW, True):
        d.pipeline.read(PERIOD)
        d.pipeline.on_mic(bytes(MIC), gap)
    assert resets == [False, True, False, True, True]
    assert d.pipeline.counters.overflows == 2          # the overflow, and a bare True as before
