"""``pivoice demo``: the whole device, with no Pi, no key and no network.

The real application (:class:`device.app.App`: state machine, session manager, audio pipeline,
tools, control socket) runs on simulated hardware: a microphone that speaks real recordings
(Debian's ``pocketsphinx-testdata``; flite speech when they are missing), a speaker that writes
what the device said to a WAV file, LEDs drawn in the terminal, and a button pressed by a
script. The Realtime API is the built-in simulator on loopback with a session limit of a few
seconds, so a session rotation happens during the demo. A timeline is printed as it happens.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
import wave
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import soxr
from gpiozero.pins.mock import MockFactory, MockPWMPin

from hardware.leds import PATTERNS, SimLeds
from hardware.sim import SimMicrophone, SimSpeaker

from . import config as cfg
from .app import App, Hardware
from .bus import BusEvent
from .realtime.manager import Options
from .simulator.server import RealtimeSimulator, SimulatorOptions
from .simulator.voice import synthesize
from .state import DeviceState

CLIPS = Path("/usr/share/pocketsphinx/test/data")
SESSION_LIMIT_S = 24
BUTTON = 17


def person_says(name: str, text: str) -> tuple[bytes, str]:
    """16 kHz PCM of a person saying ``text``: the recording if installed, else flite."""
    clip = CLIPS / name
    if clip.exists():
        return clip.read_bytes() + bytes(32 * 1200), f"recording {name}"
    pcm24 = np.frombuffer(synthesize(text, voice="awb"), "<i2").astype(np.float32)
    pcm16 = np.clip(soxr.resample(pcm24, 24000, 16000), -32768, 32767).astype("<i2").tobytes()
    return pcm16 + bytes(32 * 1200), "flite speech"


class Timeline:
    """Prints what the device does; LEDs as a coloured block when the terminal can show it."""

    def __init__(self, colour: bool) -> None:
        self.start = time.monotonic()
        self.colour = colour

    def __call__(self, who: str, text: str) -> None:
        print(f"{time.monotonic() - self.start:6.2f}s  {who:<8} {text}", flush=True)

    def led(self, state: str) -> str:
        r, g, b = (int(255 * c) for c in PATTERNS[DeviceState(state)].color)
        pattern = PATTERNS[DeviceState(state)].kind
        block = f"\x1b[48;2;{r};{g};{b}m    \x1b[0m " if self.colour else ""
        return f"{block}{state} ({pattern})"

    def event(self, event: BusEvent) -> None:
        d = event.data
        if event.kind == "state":
            self("leds", self.led(d["state"]))
        elif event.kind == "session":
            self("realtime", f"session {d['session_id']} live, {d['expires_in_s']:.0f} s to its limit, "
                 f"{d['carried_items']} item(s) carried over" + (" (fresh conversation)" if d["fresh"] else ""))
        elif event.kind == "heard":
            self("server", f"heard “{d['text']}”")
        elif event.kind == "reply" and d["text"]:
            self("device", ("says" if d["audio"] else "wrote (no audio!)") + f" “{d['text']}”")
        elif event.kind == "tool":
            self("tool", f"{d['name']}({d['arguments']})")
        elif event.kind == "tool_result":
            self("tool", f"-> {d['output']}")
        elif event.kind == "carry_over_fallback":
            self("realtime", f"the first reply after the carry-over was text only: removed {d['deleted']} "
                 "replayed reply item(s), asking again")
        elif event.kind == "barge_in":
            self("audio", f"barge-in ({d['cause']}): playback stopped, reply truncated at {d['audio_end_ms']} ms")
        elif event.kind == "narrate":
            self(d["who"], d["text"])
        elif event.kind in ("button", "mute", "new_conversation", "error"):
            self(event.kind, ", ".join(f"{k}={v}" for k, v in d.items() if k != "wall") or "")


class Demo:
    def __init__(self, out_wav: str, speedup: float, colour: bool, speaker: str | None = None) -> None:
        self.out_wav = out_wav
        self.speaker = speaker
        self.speedup = speedup
        self.say = Timeline(colour)
        self.pins = MockFactory(pin_class=MockPWMPin)
        self._real_speaker: Any = None

    async def run(self) -> int:
        if self.speaker and (problem := await self._probe_speaker()):
            self.say("demo", problem)
            return 1
        sim = await RealtimeSimulator(SimulatorOptions(session_limit_s=SESSION_LIMIT_S, speedup=self.speedup,
                                                       ping_interval_s=None)).start()
        with tempfile.TemporaryDirectory(prefix="pivoice-demo-") as tmp:
            config = cfg.parse({"realtime": {"url": sim.url, "rotate_margin": 6}, "audio": {"backend": "simulated"},
                                "gpio": {"pin_factory": "mock", "button_pin": BUTTON, "led_pins": [18]},
                                "control": {"socket": f"{tmp}/control.sock"}}, source="(demo)")
            hardware = Hardware(
                microphone=lambda on_audio, bridge: SimMicrophone(on_audio, rate=16000),
                speaker=self._speaker,
                gpio=lambda: (SimLeds(), self.pins, None))
            self.app = App(config, hardware=hardware, api_key=lambda: "demo-key",
                           manager_options=Options(session_limit_s=SESSION_LIMIT_S, rotate_margin_s=6,
                                                   ping_interval_s=None))
            self.say("demo", f"Realtime simulator on {sim.url}; session limit {SESSION_LIMIT_S} s")
            follower = asyncio.create_task(self._follow())
            device = asyncio.create_task(self.app.run())
            script = asyncio.create_task(self._script())
            try:
                # The app stops itself on SIGINT/SIGTERM (its own handlers): then the demo ends too.
                await asyncio.wait({script, device}, timeout=240, return_when=asyncio.FIRST_COMPLETED)
                interrupted = not script.done()
                script.cancel()
            finally:
                self.app.stop()
                await device
                follower.cancel()
                await sim.stop()
        return self._summary(interrupted)

    def _summary(self, interrupted: bool) -> int:
        """Say what happened and where the audio went: only what is true."""
        m = self.app.manager.status()
        self.say("demo", ("interrupted after " if interrupted else "done: ")
                 + f"{m['turns']} spoken turn(s), {m['replies']} replies, {m['rotations']} rotation(s), "
                 f"{m['text_only_fallbacks']} carry-over fallback(s)")
        return self._where_the_audio_went(interrupted)

    def _where_the_audio_went(self, interrupted: bool) -> int:
        if self.speaker:
            real = self._real_speaker
            if real is None or not real.last_write or real.errors:
                why = self.app.audio_problem or "no audio was written"
                self.say("demo", f"could not play on {self.speaker!r}: {why}")
                return 1
            self.say("demo", f"played on {self.speaker!r}")
        elif _wav_frames(self.out_wav):
            self.say("demo", f"what the device said is in {self.out_wav}")
        else:
            Path(self.out_wav).unlink(missing_ok=True)
            self.say("demo", f"the device said nothing yet: no {self.out_wav} written")
        return 130 if interrupted else 0

    async def _probe_speaker(self) -> str | None:
        """Open the named sound card once, before the demo: a missing card is said at once."""
        from hardware.audio import Speaker

        from .errors import AudioDeviceError

        start = time.monotonic()
        speaker = Speaker(self.speaker or "default", lambda nbytes: b"")
        try:
            await asyncio.to_thread(speaker.open)
        except AudioDeviceError as exc:
            return f"could not play on {self.speaker!r}: {exc} (found out in {time.monotonic() - start:.2f} s)"
        finally:
            speaker.close()
        return None

    def _speaker(self, read: Callable[[int], bytes]) -> Any:
        """The WAV file, or a real sound card when one was named (``--speaker default``)."""
        if self.speaker:
            from hardware.audio import Speaker

            self._real_speaker = Speaker(self.speaker, read)
            return self._real_speaker
        return SimSpeaker(read, wav_path=self.out_wav)

    def tell(self, who: str, text: str) -> None:
        """Narration goes through the bus, so it prints in order with what the device does."""
        self.app.publish("narrate", {"who": who, "text": text})

    async def _follow(self) -> None:
        async for event in self.app.bus.subscribe(maxsize=10000):
            self.say.event(event)

    async def _idle(self) -> None:
        while not (self.app.machine.state is DeviceState.IDLE and self.app.manager.idle()):
            await asyncio.sleep(0.05)

    async def _reply(self) -> None:
        """Until a spoken reply has finished playing."""
        app = self.app
        seen = app.conversation.stats.replies
        while not (app.conversation.stats.replies > seen and app.manager.idle()
                   and app.machine.state is DeviceState.IDLE):
            await asyncio.sleep(0.05)

    async def _press(self, seconds: float) -> None:
        pin = self.pins.pin(BUTTON)
        pin.drive_low()
        await asyncio.sleep(seconds)
        pin.drive_high()

    async def _script(self) -> None:
        app = self.app
        await self._idle()
        pcm, source = person_says("goforward.raw", "go forward ten meters")
        self.tell("person", f"speaks ({source}): “go forward ten meters”")
        app.mic.say(pcm)
        await self._reply()

        self.tell("admin", "pivoice say “What time is it?”")
        app.manager.say("What time is it?")
        await self._reply()

        self.tell("person", "double-taps the button (mute), then again (unmute)")
        for _ in range(2):
            await self._press(0.15)
            await asyncio.sleep(0.12)
            await self._press(0.15)
            await asyncio.sleep(0.8)

        self.tell("demo", f"waiting for the session rotation (in {app.manager.status()['rotation_in_s']:.0f} s)")
        rotations = app.manager.stats.rotations
        while app.manager.stats.rotations == rotations:
            await asyncio.sleep(0.1)
        await self._idle()

        self.tell("admin", "pivoice say “What did I say before?”")
        app.manager.say("What did I say before?")
        await self._reply()

        self.tell("admin", "pivoice say “Tell me a long story about a robot and a cat.”")
        app.manager.say("Tell me a long story about a robot and a cat, please, with many details.")
        while app.machine.state is not DeviceState.SPEAKING:
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.8)
        self.tell("person", "taps the button while the device speaks")
        await self._press(0.15)
        await asyncio.sleep(0.6)
        await self._idle()

        self.tell("person", "holds the button for 3 s: new conversation")
        sessions = len(app.manager.stats.history)
        await self._press(3.3)
        while len(app.manager.stats.history) == sessions:
            await asyncio.sleep(0.05)
        await self._idle()
        await asyncio.sleep(0.2)  # let the timeline catch up


def _wav_frames(path: str) -> int:
    try:
        with wave.open(path, "rb") as wav:
            return wav.getnframes()
    except (OSError, EOFError, wave.Error):
        return 0


async def run_demo(*, out_wav: str = "pivoice-demo.wav", speedup: float = 4.0, speaker: str | None = None) -> int:
    return await Demo(out_wav, speedup, colour=sys.stdout.isatty(), speaker=speaker).run()
