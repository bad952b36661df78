"""The audio pipeline through PyAudio, PortAudio and ALSA (file-plugin devices), against the
simulator over a real loopback WebSocket."""

from __future__ import annotations

import asyncio
import os
import wave

import numpy as np
import pytest
import soxr

from device.audio.pipeline import AudioPipeline
from device.audio.turns import TurnMode, TurnTaker
from device.realtime import events as ev
from device.realtime.connection import Endpoint
from device.realtime.conversation import RealtimeConversation
from device.realtime.manager import Options, SessionManager
from device.realtime.session import SessionSettings, TurnDetection
from device.errors import AudioDeviceError
from hardware.audio import Microphone, Speaker
from hardware.bridge import LoopBridge
from hardware.interfaces import Gap

from .helpers import clip16k, silence16k


class Device:
    """Mic + pipeline + conversation + session manager + speaker, wired as the daemon wires
    them, against the simulator over loopback; every server event is kept for the asserts."""

    def __init__(self, sim, tmp_path, *, mode=TurnMode.SERVER_VAD, mic="fakemic", channels=None):
        self.sim, self.mode, self.mic_name, self.channels = sim, mode, mic, channels
        self.captured = 0
        self.events: list[ev.ServerEvent] = []
        self.published: list[tuple[str, dict]] = []
        self.tasks: list[asyncio.Task] = []

    async def start(self, *, speaker=True, mic_limit_bytes=None):
        bridge = LoopBridge()
        turn = None if self.mode is not TurnMode.SERVER_VAD else TurnDetection(silence_duration_ms=500)
        settings = SessionSettings(turn_detection=turn, noise_reduction=None)
        self.pipeline = AudioPipeline(TurnTaker(self.mode), prebuffer_ms=80, post=bridge.post)
        # The file plugin delivers the recording's first 3 s at once (then it is paced, having no
        # clock: hardware/pacing.py): let the uplink queue hold it.
        self.conversation = RealtimeConversation(server_interrupts=self.mode is TurnMode.SERVER_VAD,
                                                 max_queue_ms=60000)
        self.manager = SessionManager(
            endpoint=lambda: Endpoint(url=self.sim.url, model="gpt-realtime", api_key="k"),
            settings=lambda: settings, conversation=self.conversation, pipeline=self.pipeline,
            run_tool=lambda name, args: asyncio.sleep(0, ("{}", "ok")), options=Options(ping_interval_s=None),
            publish=lambda kind, data: self.published.append((kind, data)))
        self.manager.observers.append(self.events.append)
        self.speaker = None
        if speaker:
            self.speaker = Speaker("fakespk", self.pipeline.read)
            self.speaker.open()
            self.pipeline.speaker_opened(self.speaker.rate)
        self.mic_limit = mic_limit_bytes
        self.mic = Microphone(self.mic_name, self._on_mic, bridge=bridge, channels=self.channels)
        self.tasks.append(asyncio.create_task(self.manager.run()))
        await self.wait_for(lambda: self.manager.connected)
        return self

    @property
    def playback(self):
        return self.pipeline.playback

    def open_mic(self):
        self.mic.open()
        self.pipeline.mic_opened(self.mic.rate, self.mic.channels)

    def _on_mic(self, pcm, overflowed):
        if self.mic_limit is not None and self.captured >= self.mic_limit:
            return  # the file plugin goes on past the recording (null's samples): stop at its end
        self.captured += len(pcm)
        self.pipeline.on_mic(pcm, overflowed)

    def of(self, kind):
        return [data for k, data in self.published if k == kind]

    async def wait_for(self, predicate, timeout=60):
        for _ in range(int(timeout / 0.02)):
            if predicate():
                return
            await asyncio.sleep(0.02)
        raise AssertionError("timed out waiting")

    async def close(self):
        self.mic.close()
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        if self.speaker:
            self.speaker.close()


def write_raw(tmp_path, name, pcm):
    path = tmp_path / name
    path.write_bytes(pcm)
    return str(path)


def wav_samples(path):
    with wave.open(str(path)) as w:
        return w.getframerate(), np.frombuffer(w.readframes(w.getnframes()), "<i2")


def longest_silence_ms(samples, rate, threshold=64):
    """The longest run of near-silence between the first and last loud sample."""
    loud = np.flatnonzero(np.abs(samples) > threshold)
    if len(loud) < 2:
        return 0
    gaps = np.diff(loud)
    return int(gaps.max() * 1000 / rate)


SPEECH = silence16k(1000) + clip16k() + silence16k(3000)


@pytest.mark.parametrize("mic, channels, make", [
    ("fakemic", None, lambda pcm: ("FAKEMIC_RAW", pcm)),
    # a 48 kHz stereo device, like the ReSpeaker 2-mic HAT: resampled and downmixed
    ("fakemic48s", 2, lambda pcm: ("FAKEMIC48_RAW", np.repeat(np.clip(soxr.resample(
        np.frombuffer(pcm, "<i2").astype(np.float32), 16000, 48000), -32768, 32767).astype("<i2"), 2).tobytes())),
])
async def test_what_reaches_the_server_is_24khz_speech_of_the_right_length(simulator, tmp_path, mic, channels, make):
    env, raw = make(SPEECH)
    os.environ[env] = write_raw(tmp_path, "mic.raw", raw + bytes(len(raw)))  # padded: past the end is stale
    dev = await Device(simulator, tmp_path, mic=mic, channels=channels).start(speaker=False, mic_limit_bytes=len(raw))
    try:
        dev.open_mic()
        assert (dev.mic.rate, dev.mic.channels) == ((16000, 1) if mic == "fakemic" else (48000, 2))
        await dev.wait_for(lambda: any(isinstance(e, ev.InputAudioCommitted) for e in dev.events))
        sim = simulator.stats.sessions[-1]
        item = next(e for e in dev.events if isinstance(e, ev.InputAudioCommitted)).item_id
        await dev.wait_for(lambda: sim.items and sim.items[0]["content"][0].get("transcript") is not None)
        # the server heard the words at the right speed: 24 kHz audio, not chipmunks
        heard = [i["content"][0]["transcript"] for i in sim.items if i.get("role") == "user"]
        assert heard == ["go forward ten meters"], (sim.heard_ms, dev.conversation.stats)
        clip_ms = len(clip16k()) // 32
        assert clip_ms - 700 <= sim.heard_ms[item] <= clip_ms + 300
        # silence was held back: 1 s before and 3 s after the speech cost nothing beyond
        # the pre-roll (300 ms) and the trailing silence the server needs (800 ms)
        sent_ms = dev.conversation.stats.bytes_up // 48
        assert sent_ms <= clip_ms + 300 + 800 + 40
        assert dev.conversation.stats.bytes_up == dev.pipeline.counters.bytes_sent  # 24 kHz: 16 kHz frames x 1.5
    finally:
        await dev.close()


async def test_local_vad_commits_and_asks_for_the_reply_itself(simulator, tmp_path):
    os.environ["FAKEMIC_RAW"] = write_raw(tmp_path, "mic.raw", SPEECH * 2)
    dev = await Device(simulator, tmp_path, mode=TurnMode.LOCAL_VAD).start(speaker=False, mic_limit_bytes=len(SPEECH))
    try:
        dev.open_mic()
        await dev.wait_for(lambda: any(isinstance(e, ev.ResponseDone) for e in dev.events))
        assert dev.conversation.stats.commits == 1
        sim = simulator.stats.sessions[-1]
        assert sim.session["audio"]["input"]["turn_detection"] is None
        said = "".join(e.delta for e in dev.events if isinstance(e, ev.AudioTranscriptDelta))
        assert said == "You said: go forward ten meters."
    finally:
        await dev.close()


async def test_speaker_plays_the_reply_in_order_without_gaps(simulator, tmp_path):
    wav = tmp_path / "spk.wav"
    os.environ["FAKESPK_WAV"] = str(wav)
    dev = await Device(simulator, tmp_path).start()
    try:
        dev.manager.say("the quick brown fox jumps over the lazy dog")
        await dev.wait_for(lambda: any(isinstance(e, ev.ResponseDone) for e in dev.events))
        await dev.wait_for(lambda: dev.of("reply_finished"))   # the drained notice, not a poll
        assert not dev.playback.active
        reply = b"".join(e.pcm for e in dev.events if isinstance(e, ev.AudioDelta))
    finally:
        await dev.close()
    rate, played = wav_samples(wav)
    assert rate == 16000
    ref = np.clip(soxr.resample(np.frombuffer(reply, "<i2").astype(np.float32), 24000, 16000), -32768, 32767)
    # all of it, and no gap longer than the reply's own pauses (plus one period)
    loud, ref_loud = np.flatnonzero(np.abs(played) > 64), np.flatnonzero(np.abs(ref) > 64)
    assert abs((loud[-1] - loud[0]) - (ref_loud[-1] - ref_loud[0])) < rate * 0.02
    assert longest_silence_ms(played, rate) <= longest_silence_ms(ref, rate) + 20
    assert dev.playback.stats.underruns == 0
    from tests.test_cli import transcribe_wav
    heard = transcribe_wav(wav).split()
    assert {"said", "quick", "brown", "fox"} <= set(heard), heard


async def test_barge_in_stops_playback_and_truncates_at_the_audio_played(simulator_factory, tmp_path):
    sim = await simulator_factory(speedup=1.5)
    wav = tmp_path / "spk.wav"
    os.environ["FAKESPK_WAV"] = str(wav)
    person = silence16k(600) + clip16k() + silence16k(1500)
    os.environ["FAKEMIC_RAW"] = write_raw(tmp_path, "mic.raw", person * 2)
    dev = await Device(sim, tmp_path).start(mic_limit_bytes=len(person))
    try:
        dev.manager.say("please tell me everything about the history of the lighthouse by the sea")
        await dev.wait_for(lambda: dev.playback.stats.played_bytes > 16000 * 2 * 0.5)  # half a second out
        dev.open_mic()   # the person starts talking over the reply
        await dev.wait_for(lambda: dev.of("barge_in"))
        barge = dev.of("barge_in")[0]
        assert barge["cause"] == "voice"    # the device's own detection, not the server's
        assert not dev.playback.active
        played_at_flush = dev.pipeline.last_barge_in["played_ms"][barge["item_id"]]
        await dev.wait_for(lambda: any(isinstance(e, ev.ConversationItemTruncated) for e in dev.events))
        truncated = next(e for e in dev.events if isinstance(e, ev.ConversationItemTruncated))
        assert truncated.audio_end_ms == barge["audio_end_ms"] == played_at_flush
        assert 500 <= truncated.audio_end_ms < dev.conversation.received_ms[barge["item_id"]]
        await dev.wait_for(lambda: any(isinstance(e, ev.ResponseDone) for e in dev.events))
        done = next(e for e in dev.events if isinstance(e, ev.ResponseDone))
        assert done.response.status == "cancelled" and done.response.reason == "turn_detected"
        await asyncio.sleep(0.3)
        # nothing more of that reply reached the speaker (it would have started it again)
        assert sum(p["item_id"] == barge["item_id"] for p in dev.of("playback_started")) == 1
    finally:
        await dev.close()
    rate, played = wav_samples(wav)
    loud = np.flatnonzero(np.abs(played) > 64)
    first_reply_end = loud[np.flatnonzero(np.diff(loud) > rate * 0.5)[0]] if (np.diff(loud) > rate * 0.5).any() else loud[-1]
    # what reached the speaker of the cut reply is no more than what was counted as played
    # (its start is blurred by the voice's leading silence, hence the loose lower bound)
    span_ms = (first_reply_end - loud[0]) * 1000 / rate
    assert truncated.audio_end_ms - 300 <= span_ms <= truncated.audio_end_ms + 40


def test_missing_device_is_a_clear_error():
    with pytest.raises(AudioDeviceError) as err:
        Microphone("usb-mic-that-is-not-there", lambda *a: None, bridge=LoopBridge(asyncio.new_event_loop())).open()
    assert "no input device named 'usb-mic-that-is-not-there'" in str(err.value)
    assert "fakemic" in str(err.value) and "pivoice devices" in str(err.value)


async def test_a_missing_microphone_is_retried_until_it_appears(tmp_path):
    from functools import partial

    from device.realtime.backoff import backoff
    from hardware.keepopen import keep_open

    os.environ["FAKEMIC_RAW"] = write_raw(tmp_path, "mic.raw", silence16k(100) * 50)
    problems, frames = [], []
    mic = Microphone("usb-mic", lambda pcm, over: frames.append(len(pcm)), bridge=LoopBridge())
    task = asyncio.create_task(keep_open(mic, delays=partial(backoff, base_s=0.01, cap_s=0.05),
                                         on_problem=problems.append))
    for _ in range(500):
        await asyncio.sleep(0.01)
        if len(problems) >= 3:
            break
    assert len(problems) >= 3 and all("no input device named 'usb-mic'" in str(p) for p in problems)
    assert not task.done()  # still trying, nothing crashed
    mic.device_name = "fakemic"  # the admin plugs it in (or fixes the name)
    for _ in range(500):
        await asyncio.sleep(0.01)
        if frames:
            break
    assert frames and problems[-1] is None  # open, and the problem was cleared
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert not mic.alive


async def test_the_microphone_changes_its_period_while_it_runs(tmp_path):
    """The reader reopens the stream at the new period after its current read; the first period
    after it says audio was lost (the pipeline takes its clock afresh); never a dead device.
    (What is lost, through a sound card that runs in real time: tests/audio/test_mic_pulse.py.)"""
    os.environ["FAKEMIC_RAW"] = write_raw(tmp_path, "mic.raw", silence16k(100) * 50)
    got: list[tuple[int, bool]] = []
    mic = Microphone("fakemic", lambda pcm, over: got.append((len(pcm), over)), bridge=LoopBridge(), period_ms=50)
    mic.open()
    try:
        frame = mic.rate * mic.channels * 2 // 1000
        stream = mic._stream
        for _ in range(200):
            await asyncio.sleep(0.01)
            if got:
                break
        assert got and got[0] == (50 * frame, False)
        mic.set_period(100)
        for _ in range(500):
            await asyncio.sleep(0.01)
            if sum(n == 100 * frame for n, _ in got) >= 3:
                break
        assert mic.alive and mic.reopens == 1 and mic._stream is not stream
    finally:
        mic.close()
    flags = [over for _, over in got]
    assert flags.count(Gap.REOPEN) == 1 and flags.count(Gap.NONE) == len(flags) - 1   # announced, once
    first = flags.index(Gap.REOPEN)
    assert all(n == 100 * frame for n, _ in got[first:])
    # before it: 50 ms periods, then what the old stream still held (handed over, any length)
    assert first >= 2 and all(n == 50 * frame for n, _ in got[:first - 1])
    assert not mic.alive and mic._stream is None


async def test_an_overflow_reopens_the_stream_and_says_audio_was_lost(tmp_path, caplog, monkeypatch):
    """PyAudio on an overflow (paInputOverflowed, with exception_on_overflow): it closes the
    stream and raises. A real overflow cannot be made on this machine (ALSA's null plugin never
    overruns, PulseAudio buffers on its side), so the next read does exactly that, once."""
    import pyaudio

    os.environ["FAKEMIC_RAW"] = write_raw(tmp_path, "mic.raw", silence16k(100) * 50)
    got: list[tuple[int, bool]] = []
    mic = Microphone("fakemic", lambda pcm, over: got.append((len(pcm), over)), bridge=LoopBridge(), period_ms=50)
    mic.open()
    try:
        for _ in range(200):
            await asyncio.sleep(0.01)
            if got:
                break
        real_read, overflowed = pyaudio.PyAudio.Stream.read, []

        def overflow_once(stream, frames, exception_on_overflow=True):
            if not overflowed:
                overflowed.append(stream)
                pyaudio._portaudio.close(stream._stream)      # what PyAudio's C module does
                raise OSError(-9981, "Input overflowed")
            return real_read(stream, frames, exception_on_overflow)

        before = len(got)
        monkeypatch.setattr(pyaudio.PyAudio.Stream, "read", overflow_once)
        for _ in range(500):
            await asyncio.sleep(0.01)
            if overflowed and len(got) > before + 2:
                break
        flagged = [over for _, over in got[before:]]
        assert flagged.count(Gap.OVERFLOW) == 1 and flagged.count(Gap.NONE) == len(flagged) - 1
        assert mic.overflows == 1 and mic.alive
        assert mic._stream is not overflowed[0]             # a new stream, reading on
        assert overflowed[0] not in mic._pa._streams        # the closed one left PyAudio's list
        assert "microphone overflowed" in caplog.text
    finally:
        mic.close()
    assert not mic.alive


@pytest.mark.parametrize("as_json", [True, False])
def test_mic_test_says_when_the_microphone_overflowed(tmp_path, monkeypatch, capsys, as_json):
    """`pivoice mic-test` on a microphone that overflows once (as PyAudio reports it: the stream
    closed, OSError -9981): the admin is told audio was lost, and the echo canceller's probe is
    told of the gap as the daemon's pipeline is."""
    import json

    import pyaudio

    from device import config as cfg
    from device.diag import audio as diag

    os.environ["FAKEMIC_RAW"] = write_raw(tmp_path, "mic.raw", clip16k("goforward.raw") + silence16k(100) * 20)
    real_read, reads = pyaudio.PyAudio.Stream.read, []

    def overflow_third(stream, frames, exception_on_overflow=True):
        reads.append(stream)
        if len(reads) == 3:
            pyaudio._portaudio.close(stream._stream)
            raise OSError(-9981, "Input overflowed")
        return real_read(stream, frames, exception_on_overflow)

    monkeypatch.setattr(pyaudio.PyAudio.Stream, "read", overflow_third)
    config = cfg.parse({"audio": {"backend": "pyaudio", "input_device": "fakemic", "echo_cancel": "off"}})
    assert diag.mic_test(config, seconds=1.0, device=None, save=None, as_json=as_json) == 0
    out = capsys.readouterr().out
    if as_json:
        assert json.loads(out)["overflows"] == 1
    else:
        assert "the microphone overflowed 1 time(s): audio was lost" in out
