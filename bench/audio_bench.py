"""Audio pipeline figures, each against a naive baseline measured in the same run.

This measures the in-process path only (pipeline, conversation core, ALSA's file plugin): the
figures of record, through a real-time sound server with an echo path, come from
bench/realtime_bench.py.

    .venv/bin/python bench/audio_bench.py

Prints: CPU seconds per second of full-duplex audio; end of speech to commit (local_vad);
first delta received to first sample written to ALSA; barge-in onset to playback stopped;
upstream bytes per minute of a mostly silent room. Not a test: it prints, it does not assert.
The naive baseline is what small projects do: per-frame base64 + JSON of everything, no gate,
resampling by linear interpolation.
"""

from __future__ import annotations

import base64
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import soxr

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("ALSA_CONFIG_PATH",
                      f"/usr/share/alsa/alsa.conf:{Path(__file__).resolve().parents[1] / 'tests/fixtures/asoundrc.fake'}")

from device.audio.pipeline import AudioPipeline  # noqa: E402
from device.audio.playback import PlaybackBuffer  # noqa: E402
from device.audio.turns import TurnMode, TurnTaker  # noqa: E402
from device.realtime import events as ev  # noqa: E402
from device.realtime.connection import Endpoint  # noqa: E402
from device.realtime.conversation import RealtimeConversation  # noqa: E402
from device.realtime.manager import SessionManager  # noqa: E402
from device.realtime.protocol import RealtimeProtocol  # noqa: E402
from device.realtime.session import SessionSettings  # noqa: E402

CLIP = Path("/usr/share/pocketsphinx/test/data/goforward.raw")
DEVICE_RATE = 48000
SECONDS = 60


def speech_48k() -> np.ndarray:
    x = np.frombuffer(CLIP.read_bytes(), "<i2").astype(np.float32)
    return np.clip(soxr.resample(x, 16000, DEVICE_RATE), -32768, 32767).astype(np.int16)


def room(seconds: int, *, talk_every_s: int | None = None) -> np.ndarray:
    """Quiet room noise (about -65 dBFS), with the clip spoken every ``talk_every_s`` seconds."""
    rng = np.random.default_rng(1)
    out = (rng.standard_normal(seconds * DEVICE_RATE) * 18).astype(np.int16)
    if talk_every_s:
        clip = speech_48k()
        for start in range(1, seconds - 4, talk_every_s):
            s = start * DEVICE_RATE
            out[s:s + len(clip)] = np.clip(out[s:s + len(clip)].astype(np.int32) + clip, -32768, 32767)
    return out


def reply_deltas(seconds: int) -> list[str]:
    """Server audio deltas as frames on the wire (100 ms each)."""
    x = np.frombuffer(CLIP.read_bytes(), "<i2").astype(np.float32)
    pcm = np.clip(soxr.resample(x, 16000, 24000), -32768, 32767).astype("<i2").tobytes()
    pcm = (pcm * (seconds * 48000 // len(pcm) + 1))[: seconds * 48000]
    proto = RealtimeProtocol(side="server")
    return [proto.send(ev.AudioDelta.from_pcm(pcm[i:i + 4800], response_id="resp_1", item_id="item_1"))
            for i in range(0, len(pcm), 4800)]


class Device:
    """The pipeline, the conversation core and the session manager's pump, as the daemon wires
    them, minus the socket: what would be sent is taken from the outbox (this measures the
    audio path in-process, not through a sound server: bench/realtime_bench.py does that)."""

    def __init__(self, mode: TurnMode = TurnMode.SERVER_VAD, *, mic_rate: int = DEVICE_RATE,
                 speaker_rate: int | None = DEVICE_RATE) -> None:
        self.pipe = AudioPipeline(TurnTaker(mode), prebuffer_ms=80)
        self.pipe.mic_opened(mic_rate, 1)
        if speaker_rate:
            self.pipe.speaker_opened(speaker_rate)
        self.conv = RealtimeConversation(server_interrupts=mode is TurnMode.SERVER_VAD, max_queue_ms=600_000)
        self.conv.begin_session(session_id="sess_bench", fresh=True, now=0.0)
        self.manager = SessionManager(endpoint=lambda: Endpoint(url="ws://127.0.0.1:9/", model="gpt-realtime"),
                                      settings=SessionSettings, conversation=self.conv, pipeline=self.pipe,
                                      run_tool=None)  # type: ignore[arg-type]

    @property
    def playback(self) -> PlaybackBuffer:
        return self.pipe.playback

    def server(self, event: ev.ServerEvent) -> None:
        self.manager._execute(self.conv.server_event(event, time.monotonic()))

    def drain(self) -> list[ev.ClientEvent]:
        out = []
        while self.conv.outbox:
            out.append(self.conv.outbox.pop())
        return out


def pipeline(mode=TurnMode.SERVER_VAD) -> tuple[Device, PlaybackBuffer]:
    device = Device(mode)
    return device, device.playback


# ---------------------------------------------------------------------------- full duplex
def ours_full_duplex(mic: np.ndarray, deltas: list[str]) -> tuple[float, int]:
    pipe, playback = pipeline()
    client = RealtimeProtocol()
    period = DEVICE_RATE // 20  # 50 ms capture periods
    out_bytes = 0
    start = time.process_time()
    for i in range(0, len(mic), period):
        pipe.pipe.on_mic(mic[i:i + period].tobytes())
        out_bytes += sum(len(client.send(event)) for event in pipe.drain())
    for frame in deltas:
        pipe.server(client.receive_text(frame))
        while playback.read(DEVICE_RATE // 50 * 2):
            pass
    return time.process_time() - start, out_bytes


def naive_full_duplex(mic: np.ndarray, deltas: list[str]) -> tuple[float, int]:
    period = DEVICE_RATE // 50
    out_bytes = 0
    start = time.process_time()
    for i in range(0, len(mic), period):
        chunk = mic[i:i + period].astype(np.float32)
        t_in = np.arange(len(chunk))
        t_out = np.arange(0, len(chunk), DEVICE_RATE / 24000)
        pcm = np.interp(t_out, t_in, chunk).astype("<i2").tobytes()
        out_bytes += len(json.dumps({"type": "input_audio_buffer.append", "audio": base64.b64encode(pcm).decode()}))
    played = []
    for frame in deltas:
        data = json.loads(frame)
        x = np.frombuffer(base64.b64decode(data["delta"]), "<i2").astype(np.float32)
        played.append(np.interp(np.arange(0, len(x), 24000 / DEVICE_RATE), np.arange(len(x)), x).astype(np.int16))
    return time.process_time() - start, out_bytes


# -------------------------------------------------------------------------- latencies
def end_of_speech_to_commit() -> tuple[float, float]:
    """(ms of audio from the last speech frame to the commit, CPU ms to process that frame)."""
    pipe, _ = pipeline(TurnMode.LOCAL_VAD)
    mic = np.concatenate([room(1), speech_48k(), room(3)])
    period = DEVICE_RATE // 50
    last_speech_frame = commit_frame = None
    frame_no = 0
    cost = []
    for i in range(0, len(mic), period):
        before = pipe.pipe.counters.speech_frames
        t0 = time.perf_counter()
        pipe.pipe.on_mic(mic[i:i + period].tobytes())
        cost.append(time.perf_counter() - t0)
        frame_no += 1
        if pipe.pipe.counters.speech_frames > before:
            last_speech_frame = frame_no
        if pipe.conv.stats.commits and commit_frame is None:
            commit_frame = frame_no
    return (commit_frame - last_speech_frame) * 20.0, 1000 * max(cost)


def first_delta_to_alsa(trials: int = 5) -> list[float]:
    from hardware.audio import Speaker

    os.environ["FAKESPK_WAV"] = os.path.join(tempfile.mkdtemp(), "spk.wav")
    out = []
    deltas = reply_deltas(1)
    client = RealtimeProtocol()
    for _ in range(trials):
        device = Device(mic_rate=16000, speaker_rate=None)
        speaker = Speaker("fakespk", device.pipe.read)
        speaker.open()
        device.pipe.speaker_opened(speaker.rate)
        written = threading.Event()
        speaker.first_write_after = written.set
        time.sleep(0.1)
        t0 = time.perf_counter()
        device.server(client.receive_text(deltas[0]))  # 100 ms: more than the prebuffer
        written.wait(2)
        out.append(1000 * (time.perf_counter() - t0))
        speaker.close()
    return out


def barge_in_to_stopped(trials: int = 5) -> list[float]:
    """From the frame that confirms speech over playback to the last reply sample leaving the
    speaker: the time until the writer stops handing reply audio to ALSA, plus the audio
    already handed over (at most the writer's ``ahead_ms`` on an unpaced device)."""
    from hardware.audio import Speaker

    out = []
    client = RealtimeProtocol()
    deltas = reply_deltas(4)
    speech = np.clip(soxr.resample(speech_48k().astype(np.float32), DEVICE_RATE, 16000), -32768, 32767).astype(np.int16)
    for _ in range(trials):
        device = Device(mic_rate=16000, speaker_rate=None)
        last_reply_write = [0.0]

        def read(n, _read=device.pipe.read):
            pcm = _read(n)
            if pcm:
                last_reply_write[0] = time.perf_counter()
            return pcm

        speaker = Speaker("fakespk", read)
        speaker.open()
        device.pipe.speaker_opened(speaker.rate)
        device.server(client.receive_text(json.dumps({"type": "response.created", "response": {"id": "resp_1"}})))
        for frame in deltas:
            device.server(client.receive_text(frame))
        time.sleep(0.8)  # the reply is playing
        t_onset = None
        for i in range(0, len(speech), 320):
            device.pipe.on_mic(speech[i:i + 320].tobytes())
            if device.pipe.last_barge_in:
                t_onset = time.perf_counter()
                in_alsa_ms = 1000 * speaker.ahead_s
                break
        time.sleep(0.2)
        speaker.close()
        if t_onset is not None:
            # stopped handing reply audio to ALSA, plus what ALSA already held at that moment
            out.append(max(0.0, 1000 * (last_reply_write[0] - t_onset)) + in_alsa_ms)
    return out


def upstream_per_minute() -> tuple[int, int]:
    mic = room(SECONDS)
    pipe, _ = pipeline()
    client = RealtimeProtocol()
    sent = 0
    for i in range(0, len(mic), DEVICE_RATE // 20):
        pipe.pipe.on_mic(mic[i:i + DEVICE_RATE // 20].tobytes())
        sent += sum(len(client.send(e)) for e in pipe.drain() if isinstance(e, ev.InputAudioAppend))
    _, naive = naive_full_duplex(mic, [])
    return sent, naive


def main() -> None:
    assert CLIP.exists(), "install pocketsphinx-testdata (./install.sh --dev)"
    mic = room(SECONDS, talk_every_s=10)
    deltas = reply_deltas(SECONDS // 3)  # a third of the time the device speaks
    ours_cpu, ours_bytes = ours_full_duplex(mic, deltas)
    naive_cpu, naive_bytes = naive_full_duplex(mic, deltas)
    print(f"full-duplex CPU, per second of audio: pivoice {100 * ours_cpu / SECONDS:.2f}% of one core"
          f"  (naive {100 * naive_cpu / SECONDS:.2f}%; target < 2%)")
    print(f"  upstream over {SECONDS} s with a person speaking every 10 s: pivoice {ours_bytes / 1e6:.2f} MB"
          f"  (naive {naive_bytes / 1e6:.2f} MB)")
    gap_ms, cpu_ms = end_of_speech_to_commit()
    print(f"end of speech to commit sent (local_vad): {gap_ms:.0f} ms of silence (the hangover) + {cpu_ms:.2f} ms CPU"
          f"  (server_vad waits the server's silence_duration_ms plus a network round trip)")
    lat = first_delta_to_alsa()
    print(f"first delta received to first sample written to ALSA: median {statistics.median(lat):.1f} ms,"
          f" max {max(lat):.1f} ms  (target: prebuffer 80 ms + 10 ms)")
    barge = barge_in_to_stopped()
    if barge:
        print(f"barge-in onset to playback stopped: median {statistics.median(barge):.1f} ms,"
              f" max {max(barge):.1f} ms over {len(barge)} runs  (target < 60 ms)")
    else:
        print("barge-in onset to playback stopped: no barge-in detected (check the echo guard settings)")
    silent, naive = upstream_per_minute()
    print(f"upstream bytes per minute, silent room: pivoice {silent} B  (naive {naive} B; target 0 when gated)")


if __name__ == "__main__":
    main()
