"""``pivoice demo``: a scripted conversation with the built-in simulator over a real socket.

No Pi, no key, no network: the simulator listens on loopback, the protocol client talks to it,
and the timeline is printed as it happens. The person's voice is a real recording when
Debian's ``pocketsphinx-testdata`` is installed, or flite speech otherwise. Everything the
device was told to say goes into a WAV file.
"""

from __future__ import annotations

import json
import time
import wave
from datetime import datetime
from pathlib import Path

import numpy as np
import soxr

from .realtime import events as ev
from .realtime.connection import Endpoint, RealtimeConnection
from .realtime.models import Item
from .realtime.session import SessionSettings, Tool, TurnDetection
from .realtime.dialect import render_session
from .simulator.server import RealtimeSimulator, SimulatorOptions
from .simulator.voice import synthesize

SPEECH_CLIP = Path("/usr/share/pocketsphinx/test/data/goforward.raw")  # 16 kHz, "go forward ten meters"
TIME_TOOL = Tool(name="get_time", description="The current local time on the device.")


def user_speech() -> tuple[bytes, str]:
    """24 kHz PCM16 of a person speaking, and where it came from."""
    if SPEECH_CLIP.exists():
        samples = np.frombuffer(SPEECH_CLIP.read_bytes(), dtype="<i2").astype(np.float32)
        pcm = np.clip(soxr.resample(samples, 16000, 24000), -32768, 32767).astype("<i2").tobytes()
        return pcm, f"recorded speech ({SPEECH_CLIP.name})"
    return synthesize("go forward ten meters", voice="awb"), "flite speech"


class Timeline:
    def __init__(self) -> None:
        self.start = time.monotonic()

    def __call__(self, who: str, text: str) -> None:
        print(f"{time.monotonic() - self.start:6.2f}s  {who:<9} {text}", flush=True)


async def _until_done(conn: RealtimeConnection, say: Timeline, spoken: bytearray, *,
                      stop_after_ms: int | None = None) -> ev.ResponseDone:
    """Print one response as it arrives; optionally barge in after ``stop_after_ms`` of audio."""
    transcript: list[str] = []
    received_ms, stopped = 0, False
    async for event in conn:
        if isinstance(event, ev.SpeechStarted):
            say("mic", "speech started")
        elif isinstance(event, ev.SpeechStopped):
            say("mic", f"speech stopped at {event.audio_end_ms} ms")
        elif isinstance(event, ev.InputTranscriptionCompleted):
            say("you", f"“{event.transcript}” (as the server heard it)")
        elif isinstance(event, ev.AudioTranscriptDelta) and not stopped:
            transcript.append(event.delta)
        elif isinstance(event, ev.AudioDelta) and not stopped:
            chunk = event.pcm
            spoken += chunk
            received_ms += len(chunk) // 48
            if stop_after_ms is not None and received_ms >= stop_after_ms:
                stopped = True
                say("button", f"tap while speaking: stop, truncate at {received_ms} ms")
                await conn.send(ev.ResponseCancel())
                await conn.send(ev.ItemTruncate(item_id=event.item_id, content_index=0, audio_end_ms=received_ms))
        elif isinstance(event, ev.FunctionCallArgumentsDone):
            say("model", f"calls {event.name}({event.arguments})")
        elif isinstance(event, ev.ResponseDone):
            text = "".join(transcript).strip()
            if text:
                say("device", f"says “{text}”")
            say("server", f"response {event.response.status}"
                + (f" ({event.response.reason})" if event.response.reason else ""))
            return event
    raise RuntimeError("connection ended")


async def run_demo(*, out_wav: str = "pivoice-demo.wav", speedup: float = 4.0) -> int:
    say = Timeline()
    spoken = bytearray()
    sim = await RealtimeSimulator(SimulatorOptions(speedup=speedup, ping_interval_s=None)).start()
    try:
        say("demo", f"Realtime simulator on {sim.url}")
        conn = await RealtimeConnection.open(Endpoint(url=sim.url, model="gpt-realtime", api_key="demo-key"))
        say("server", f"session {conn.session.id}, expires in {conn.session.expires_at - time.time():.0f} s")
        settings = SessionSettings(instructions="You are a friendly voice assistant on a Raspberry Pi.",
                                   tools=(TIME_TOOL,), transcription_model="gpt-4o-mini-transcribe",
                                   turn_detection=TurnDetection(silence_duration_ms=500))
        await conn.send(ev.SessionUpdate(session=render_session(settings, conn.endpoint.dialect)))

        pcm, source = user_speech()
        say("you", f"speak into the mic: {source}, {len(pcm) // 48} ms")
        silence = bytes(48 * 700)
        for i in range(0, len(pcm + silence), 960):  # 20 ms appends, as the mic delivers them
            await conn.send(ev.InputAudioAppend.from_pcm((pcm + silence)[i:i + 960]))
        await _until_done(conn, say, spoken)

        say("you", "type: “What time is it?”")
        await conn.send(ev.ItemCreate(item=Item.user_text("What time is it?")))
        await conn.send(ev.ResponseCreate())
        done = await _until_done(conn, say, spoken)
        call = next(i for i in done.response.output if i.type == "function_call")
        now = datetime.now().strftime("%H:%M")
        say("device", f"runs {call.name} -> {now}")
        await conn.send(ev.ItemCreate(item=Item.function_output(call.call_id or "", json.dumps({"time": now}))))
        await conn.send(ev.ResponseCreate())
        await _until_done(conn, say, spoken)

        say("you", "type: “Tell me something long” and interrupt the answer")
        await conn.send(ev.ItemCreate(item=Item.user_text("Tell me a long story about a robot and a cat.")))
        await conn.send(ev.ResponseCreate())
        await _until_done(conn, say, spoken, stop_after_ms=800)
        async for event in conn:
            if isinstance(event, (ev.ConversationItemTruncated, ev.ErrorEvent)):
                say("server", f"truncated at {event.audio_end_ms} ms" if isinstance(event, ev.ConversationItemTruncated)
                    else f"error {event.code}")
                break
        await conn.close()
    finally:
        await sim.stop()
    with wave.open(out_wav, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(24000)
        wav.writeframes(bytes(spoken))
    say("demo", f"the device said {len(spoken) / 48000:.1f} s of speech -> {out_wav}")
    return 0
