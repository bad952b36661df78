"""Hands-free through the real pipeline: the device's own voice comes back into its microphone
(real speech, 0 dB, 35 ms late) and WebRTC AEC3 removes it before the VAD; a person talking
over it is heard; the wake word opens the gate and is not sent.

The speaker's thread and the microphone are driven step by step on one clock (time is an input
of the pipeline): every 20 ms the "speaker" takes what the pipeline hands it (the reference,
stamped) and the "microphone" delivers what the room made of it, as a real device would.
"""

from __future__ import annotations

import shutil
import subprocess
import wave

import numpy as np
import pytest
import soxr

from device.audio.bargehold import HoldSettings
from device.audio.pipeline import AudioPipeline
from device.audio.talkover import TalkOver
from device.audio.turns import EchoGuard, TurnMode, TurnTaker
from device.audio.wakegate import WakeGate, WakeSettings

from .helpers import clip16k

aec = pytest.importorskip("device.audio.aec")
RATE = 48000
STEP = RATE // 50              # 20 ms


class Listener:
    def __init__(self) -> None:
        self.sent = 0
        self.started = 0
        self.barge_ins: list[str] = []
        self.woken = 0

    def turn(self, actions) -> None:
        self.sent += sum(len(f) for f in actions.send)
        self.started += actions.speech_started

    def barged_in(self, cause, played_ms) -> None:
        self.barge_ins.append(cause)

    def playback_started(self, item_id) -> None:
        pass

    def playback_drained(self) -> None:
        pass

    def wake_word(self) -> None:
        self.woken += 1


class Room:
    """The pipeline, a speaker read every 20 ms, and a microphone hearing the speaker's output
    ``delay_ms`` after the speaker took it (the 40 ms the speaker thread keeps ahead, the air)
    at ``gain_db``, plus whatever a person says. The microphone hands over ``period_frames``
    frames at a time. With ``hushed``, a hush drops what the speaker's buffer holds: only the
    last ``air_ms`` (and the period under way) still reach the microphone."""

    def __init__(self, pipeline: AudioPipeline, *, gain_db: float = 0.0, delay_ms: int = 75,
                 period_frames: int = 1, air_ms: int = 35, hushed: bool = False) -> None:
        self.t = 100.0
        self.pipeline = pipeline
        pipeline.clock = lambda: self.t
        pipeline.speaker_opened(RATE)
        pipeline.mic_opened(RATE, 1)
        self.listener = Listener()
        pipeline.listener = self.listener
        if hushed:
            pipeline.hush_speaker = self.hush
        self.gain = 10 ** (gain_db / 20)
        # what is on its way (20 ms more: a period is taken before the microphone's is due)
        self.played = np.zeros(RATE * (delay_ms + 20) // 1000, np.float32)
        self.period_frames = period_frames
        self.air = RATE * (air_ms + 20) // 1000
        self.captured: list[bytes] = []

    def hush(self) -> None:
        self.played = self.played[:self.air]

    def jump(self, ms: int) -> None:
        """The output's latency grows by ``ms`` (a stream restarted with a longer buffer)."""
        self.played = np.concatenate([self.played, np.zeros(RATE * ms // 1000, np.float32)])

    def run(self, seconds: float, person: np.ndarray | None = None) -> None:
        person = np.zeros(0, np.float32) if person is None else person
        for i in range(int(seconds * 50)):
            self.t += 0.02
            out = np.frombuffer(self.pipeline.read(STEP * 2), "<i2").astype(np.float32)
            out = np.concatenate([out, np.zeros(STEP - len(out), np.float32)])
            self.played = np.concatenate([self.played, out])
            echo, self.played = self.played[:STEP] * self.gain, self.played[STEP:]
            voice = person[i * STEP:(i + 1) * STEP]
            mic = echo.copy()
            mic[:len(voice)] += voice
            self.captured.append(np.clip(mic, -32768, 32767).astype("<i2").tobytes())
            if len(self.captured) == self.period_frames:
                self.pipeline.on_mic(b"".join(self.captured))
                self.captured = []


def speech48(name: str, seconds: float | None = None) -> np.ndarray:
    x = soxr.resample(np.frombuffer(clip16k(name), "<i2").astype(np.float32), 16000, RATE)
    return x if seconds is None else x[: int(seconds * RATE)]


def reply24() -> bytes:
    """A long reply in real speech, as the API sends it (24 kHz)."""
    x = np.frombuffer(clip16k("numbers.raw"), "<i2").astype(np.float32)
    return soxr.resample(x, 16000, 24000).astype("<i2").tobytes()


def pipeline(canceller, *, guard=EchoGuard.OFF, gate=None, wake=None) -> AudioPipeline:
    turns = TurnTaker(TurnMode.SERVER_VAD, echo_guard=guard, gate=gate,
                      talk_over=TalkOver() if canceller is not None else None)
    return AudioPipeline(turns, canceller=canceller, wake=wake)


needs_webrtc = pytest.mark.skipif(not aec.available("webrtc"), reason="livekit (the aec extra) is not installed")


@needs_webrtc
@pytest.mark.parametrize("gain_db, delay_ms", [(0.0, 75), (-6.0, 90), (-18.0, 120)])
def test_the_devices_own_voice_does_not_interrupt_it(gain_db, delay_ms):
    room = Room(pipeline(aec.create("webrtc")), gain_db=gain_db, delay_ms=delay_ms)
    room.run(1.0)
    room.pipeline.play("item_1", reply24())
    room.pipeline.finish()
    room.run(6.0)
    assert room.listener.barge_ins == [] and room.listener.sent == 0
    assert room.pipeline.frontend.cancelled_frames > 400     # the canceller ran while it spoke
    assert room.pipeline.frontend.echo_out < room.pipeline.frontend.echo_in / 100   # > 20 dB removed


def test_without_a_canceller_the_same_echo_keeps_cutting_the_reply():
    """The naive baseline: the VAD alone on the raw microphone hears the device itself. Each time
    the speaker goes silent for it nobody goes on talking, so the reply plays on (bargehold.py),
    cut again and again, to its end; none of the device's own voice goes up as a turn meanwhile."""
    room = Room(pipeline(None), gain_db=0.0)
    room.run(1.0)
    room.pipeline.play("item_1", reply24())
    room.pipeline.finish()
    seconds = 0.0
    while room.pipeline.speaking:
        room.run(0.02)
        seconds += 0.02
        assert seconds < 30, "the reply never finished"
    assert room.listener.barge_ins == [] and room.listener.sent == 0
    assert room.pipeline.counters.talk_over_dismissed >= 3       # ~0.45 s of silence each time


@needs_webrtc
def test_a_person_talking_over_the_reply_at_the_echos_level_is_heard():
    room = Room(pipeline(aec.create("webrtc")), gain_db=-6.0)
    room.pipeline.play("item_1", reply24())
    room.pipeline.finish()
    room.run(2.0)
    assert room.listener.barge_ins == []
    person = speech48("goforward.raw") * 10 ** (-6 / 20)
    room.run(3.0, person)
    assert room.listener.barge_ins == ["voice"]
    assert room.listener.started == 1 and room.listener.sent > 0
    assert not room.pipeline.speaking                       # playback flushed at the local onset


@needs_webrtc
@pytest.mark.parametrize("period_frames", [2, 5])     # 40 and 100 ms capture periods
def test_aec3_losing_the_echo_mid_reply_does_not_make_the_device_interrupt_itself(period_frames):
    """The output's latency grows mid-reply (a restarted stream): AEC3 lets the echo through
    until it finds it again, and that leak is taken for a person talking over the reply. The
    hold must dismiss it: the leak stops with the speaker, but it goes on in what was captured
    before the hush (the rest of the capture period) and in the echo still on its way. A 60 ms
    settle, tried on 2026-11-29 for a person's short words, let the leak confirm about half of
    these holds: checked here too, so this harness can tell."""
    def trials(settings: HoldSettings) -> tuple[int, int]:
        interrupted = dismissed = 0
        for gain_db in (0.0, -6.0):
            for jump_ms in (120, 300):
                for at_s in (1.5, 2.5):
                    room = Room(pipeline(aec.create("webrtc")), gain_db=gain_db, period_frames=period_frames,
                                hushed=True)
                    room.pipeline.hold_settings = settings
                    room.run(1.0)
                    room.pipeline.play("item_1", reply24())
                    room.pipeline.finish()
                    room.run(at_s)
                    room.jump(jump_ms)
                    room.run(6.0 - at_s)
                    interrupted += len(room.listener.barge_ins)
                    dismissed += room.pipeline.counters.talk_over_dismissed
        return interrupted, dismissed

    interrupted, dismissed = trials(HoldSettings())
    assert interrupted == 0
    assert dismissed >= 6            # the jumps made AEC3 leak: the holds happened, and were dismissed
    assert trials(HoldSettings(settle_ms=60))[0] >= 1   # 2 of these 8; 3-6 of 12 in a wider sweep


# ------------------------------------------------------------------------------ wake word
needs_wake = pytest.mark.skipif(shutil.which("flite") is None, reason="flite is not installed")


def flite48(tmp_path, text: str, voice: str = "slt") -> np.ndarray:
    out = tmp_path / "say.wav"
    subprocess.run(["flite", "-voice", voice, "-t", text, "-o", str(out)], check=True)
    with wave.open(str(out)) as w:
        x = np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float32)
    return soxr.resample(x, w.getframerate(), RATE)


def wake_pipeline(follow_up_s: float = 0.0):
    wake = pytest.importorskip("device.audio.wake")
    try:
        detector = wake.WakeWordDetector("hey_jarvis")
    except wake.WakeWordUnavailable as exc:
        pytest.skip(str(exc))
    gate = WakeGate(WakeSettings(follow_up_s=follow_up_s))
    p = pipeline(None, gate=gate, wake=detector)
    heard: list[tuple[str, float]] = []
    p.on_wake = lambda word, score: heard.append((word, score))
    return p, heard


@needs_wake
def test_nothing_leaves_the_device_without_the_wake_word(tmp_path):
    p, heard = wake_pipeline()
    room = Room(p)
    talk = np.concatenate([flite48(tmp_path, "what time is it"), np.zeros(RATE // 2), speech48("goforward.raw")])
    room.run(len(talk) / RATE + 1.5, talk)
    assert heard == [] and room.listener.sent == 0 and room.listener.started == 0


@needs_wake
def test_a_silent_room_costs_the_wake_word_nothing(tmp_path):
    p, heard = wake_pipeline()
    room = Room(p)
    room.run(3.0)
    assert p.wake.fed_frames == 0 and p.wake.skipped_frames >= 145   # (the resampler holds a few ms)
    room.run(3.0, np.concatenate([np.zeros(RATE), flite48(tmp_path, "hey jarvis", "rms")]))
    assert [w.lower() for w, _ in heard] == ["hey jarvis"]      # fed from just before the speech


@needs_wake
def test_the_words_after_the_wake_word_are_sent_and_the_word_is_not(tmp_path):
    p, heard = wake_pipeline()
    room = Room(p)
    word = flite48(tmp_path, "hey jarvis", "rms")
    question = flite48(tmp_path, "what time is it")
    talk = np.concatenate([np.zeros(RATE // 2), word, np.zeros(RATE // 5), question])
    sent_before: list[int] = []
    p.on_wake = lambda w, s: (heard.append((w, s)), sent_before.append(room.listener.sent))
    room.run(len(talk) / RATE + 1.5, talk)
    assert [w.lower() for w, _ in heard] == ["hey jarvis"] and room.listener.woken == 1
    assert sent_before == [0]                  # nothing went up before the word was heard
    assert room.listener.started == 1
    # what went up: the question (24 kHz), at most the pre-roll more; not the wake word too
    question_bytes = len(question) / RATE * 48000
    assert 0.8 * question_bytes < room.listener.sent < question_bytes + 0.3 * 48000 + 0.8 * 48000


@needs_wake
def test_the_wake_word_interrupts_the_device_and_nothing_else_does(tmp_path):
    p, heard = wake_pipeline()
    room = Room(p, gain_db=-60)                 # a quiet speaker: this is about the gate
    p.play("item_1", reply24() * 2)
    p.finish()
    room.run(1.0)
    room.run(2.5, speech48("goforward.raw"))     # someone talks, no wake word: the reply goes on
    assert room.listener.barge_ins == [] and p.speaking
    # (the model's score is not bit-exact from run to run: a voice it hears clearly, after a pause)
    room.run(2.5, np.concatenate([np.zeros(RATE), flite48(tmp_path, "hey jarvis", "rms")]))
    assert room.listener.barge_ins == ["wake"] and not p.speaking
    assert room.listener.sent == 0             # the word itself never went up


def test_the_microphone_clock_ignores_a_late_loop_and_follows_the_card():
    from device.audio.frontend import StreamClock

    clock = StreamClock(48000)
    stamps = [clock.stamp(10.0 + 0.05 * i + (0.15 if i == 5 else 0.0), 2400) for i in range(10)]
    # a delivery 150 ms late (a busy loop) is still stamped when it was captured
    assert all(abs(s - (10.0 + 0.05 * i)) < 0.0005 for i, s in enumerate(stamps))
    # a card 300 ppm slow: deliveries come later and later; the stamps follow
    slow = [clock.stamp(10.45 + 0.05 * 1.0003 * (i + 1), 2400) for i in range(2000)]
    assert abs(slow[-1] - (10.45 + 0.05 * 1.0003 * 2000)) < 0.005
    assert clock.stamp(200.0, 2400, reset=True) == 200.0        # an overflow: samples were lost


@needs_webrtc
def test_a_canceller_failing_mid_reply_leaves_the_echo_guard_in_charge(caplog):
    """livekit refuses the canceller's requests halfway through a reply (its module gone): the
    error is logged once, the pipeline goes on as with echo_cancel = "off" (the echo guard, no
    talk-over detection), the status says why, and the device's own voice still sends nothing."""
    from device import appstatus

    canceller = aec.create("webrtc")
    turns = TurnTaker(TurnMode.SERVER_VAD, echo_guard=EchoGuard.OFF, talk_over=TalkOver())
    room = Room(AudioPipeline(turns, canceller=canceller, echo_guard=EchoGuard.GUARDED), gain_db=0.0)
    room.run(1.0)
    room.pipeline.play("item_1", reply24())
    room.pipeline.finish()
    room.run(1.0)
    assert room.pipeline.frontend.cancelled_frames > 50
    canceller._apm.close()                   # every later request: "handle not found"
    with caplog.at_level("ERROR", logger="device.audio.aec"):
        seconds = 0.0
        while room.pipeline.speaking:
            room.run(0.02)
            seconds += 0.02
            assert seconds < 30, "the reply never finished"
    assert caplog.text.count("the echo canceller failed") == 1
    assert room.pipeline.canceller is None and room.pipeline.frontend.canceller is None
    assert turns.echo_guard is EchoGuard.GUARDED and turns.talk_over is None
    status = appstatus.aec_status(room.pipeline)
    assert status is not None and status["kind"] == "webrtc" and "refused" in status["failed"]
    assert room.listener.sent == 0 and room.listener.barge_ins == []
    assert room.pipeline.counters.talk_over_dismissed == 0   # without the guard, its own voice held the reply


@needs_webrtc
@pytest.mark.parametrize("gain_db", [0.0, -6.0, -18.0])
def test_the_silence_standing_in_for_a_missing_microphone_is_not_cancelled(gain_db):
    """While a reply plays with the microphone missing, AEC3 is not run on the stand-in's zeros
    (there is no echo in them), nor are they counted as the microphone's; once the microphone
    is back the canceller runs on it again."""
    room = Room(pipeline(aec.create("webrtc")), gain_db=gain_db)
    room.pipeline.play("item_1", reply24())
    room.pipeline.finish()
    room.run(0.5)
    cancelled = room.pipeline.frontend.cancelled_frames
    assert cancelled > 0
    room.pipeline.mic_opened(16000, 1, stand_in=True)          # hardware/standin.py's silence
    mic_frames = room.pipeline.counters.mic_frames
    for _ in range(20):                                       # 2 s of 100 ms periods
        room.t += 0.1
        room.pipeline.read(STEP * 10)
        room.pipeline.on_mic(bytes(3200))
    assert room.pipeline.frontend.cancelled_frames == 0 and room.pipeline.frontend.canceller is None
    assert room.pipeline.counters.stand_in_frames == 100 and room.pipeline.counters.mic_frames == mic_frames
    room.pipeline.mic_opened(RATE, 1)                          # the microphone is back
    room.run(2.0)
    assert room.pipeline.frontend.cancelled_frames > 0 and room.pipeline.counters.mic_frames > mic_frames
    # the silence showed nothing about the canceller: its own voice, back in the microphone
    # with a canceller that starts over, is not taken for a person
    assert room.listener.barge_ins == [] and room.listener.sent == 0
    assert room.pipeline.counters.talk_over_dismissed == 0
