"""``pivoice demo --api live``: the whole device on GPT-Live, with no Pi, no key and no network.

The same application and simulated parts as :mod:`device.demo`, against the built-in GPT-Live
simulator on loopback. The script shows what is different on Live: no session while idle (every
connected second is billed), a session opened by speech with the first words kept, a tool run on
the device through the Responses delegation, the idle close, and the next session, opened by the
button, carrying the conversation so far as ``input``.
"""

from __future__ import annotations

import asyncio
import tempfile

from hardware.leds import SimLeds
from hardware.sim import SimMicrophone

from . import config as cfg
from .app import App, Hardware
from .bus import BusEvent
from .demo import BUTTON, Demo, Timeline, person_says
from .live.manager import LiveOptions
from .simulator.live_server import LiveSimulator
from .simulator.live_session import LiveSimOptions
from .state import DeviceState

IDLE_CLOSE_S = 4


class LiveTimeline(Timeline):
    def event(self, event: BusEvent) -> None:
        d = event.data
        if event.kind == "standby":
            self("live", f"no session (standby, {d['reason']}): {d.get('billed_s', 0)} s billed so far")
        elif event.kind == "connecting":
            self("live", f"opening a session ({d['reason']}); the microphone streams into it from now")
        elif event.kind == "session":
            self("live", f"session {d['session_id']} live, {d['carried_items']} message(s) of history as input")
        elif event.kind == "barge_in":
            self("audio", f"barge-in ({d['cause']}): what the device still held is dropped")
        elif event.kind == "reply" and d["text"]:
            self("device", f"said “{d['text']}”")
        else:
            super().event(event)


class LiveDemo(Demo):
    def __init__(self, out_wav: str, speedup: float, colour: bool, speaker: str | None = None) -> None:
        super().__init__(out_wav, speedup, colour, speaker)
        self.say = LiveTimeline(colour)

    async def run(self) -> int:
        if self.speaker and (problem := await self._probe_speaker()):
            self.say("demo", problem)
            return 1
        sim = await LiveSimulator(LiveSimOptions(speedup=self.speedup, ping_interval_s=None)).start()
        with tempfile.TemporaryDirectory(prefix="pivoice-demo-") as tmp:
            config = cfg.parse({"realtime": {"api": "live", "url": sim.url, "idle_close": IDLE_CLOSE_S},
                                "audio": {"backend": "simulated"},
                                "gpio": {"pin_factory": "mock", "button_pin": BUTTON, "led_pins": [18]},
                                "control": {"socket": f"{tmp}/control.sock"}}, source="(demo)")
            hardware = Hardware(microphone=lambda on_audio, bridge: SimMicrophone(on_audio, rate=16000),
                                speaker=self._speaker, gpio=lambda: (SimLeds(), self.pins, None))
            self.app = App(config, hardware=hardware, api_key=lambda: "demo-key",
                           manager_options=LiveOptions(ping_interval_s=None))
            self.say("demo", f"GPT-Live simulator on {sim.url}; sessions close after {IDLE_CLOSE_S} s without speech")
            follower = asyncio.create_task(self._follow())
            device = asyncio.create_task(self.app.run())
            script = asyncio.create_task(self._script())
            try:   # the app stops itself on SIGINT/SIGTERM: then the demo ends too
                await asyncio.wait({script, device}, timeout=240, return_when=asyncio.FIRST_COMPLETED)
                interrupted = not script.done()
                script.cancel()
            finally:
                self.app.stop()
                await device
                follower.cancel()
                await sim.stop()
        self.sessions = len(sim.stats.sessions)
        return self._summary(interrupted)

    def _summary(self, interrupted: bool) -> int:
        m = self.app.manager.status()
        self.say("demo", ("interrupted after " if interrupted else "done: ") + f"{self.sessions} session(s), "
                 f"{m['billed_s']} s billed, {m['turns']} turn(s) heard, {m['tool_calls']} tool call(s)")
        return self._where_the_audio_went(interrupted)

    async def _standby(self) -> None:
        while not (self.app.manager.status()["link"] == "standby" and self.app.machine.state is DeviceState.IDLE):
            await asyncio.sleep(0.05)

    async def _script(self) -> None:
        app = self.app
        await self._standby()
        pcm, source = person_says("goforward.raw", "go forward ten meters")
        self.tell("person", f"speaks ({source}): “go forward ten meters”")
        app.mic.say(pcm)
        await self._reply()

        self.tell("admin", "pivoice say “Please set the volume to 30”")
        app.manager.say("Please set the volume to 30")
        while not app.conversation.stats.tool_calls:
            await asyncio.sleep(0.05)
        await self._reply()

        self.tell("demo", f"nobody speaks: the session closes after {IDLE_CLOSE_S} s")
        await self._standby()

        self.tell("person", "taps the button: a new session, with the conversation so far")
        await self._press(0.15)
        while app.manager.status()["link"] != "up":
            await asyncio.sleep(0.05)
        self.tell("admin", "pivoice say “What did I say before?”")
        app.manager.say("What did I say before?")
        await self._reply()
        await self._standby()
        await asyncio.sleep(0.2)  # let the timeline catch up


async def run_live_demo(*, out_wav: str = "pivoice-demo.wav", speedup: float = 4.0, speaker: str | None = None) -> int:
    import sys

    return await LiveDemo(out_wav, speedup, colour=sys.stdout.isatty(), speaker=speaker).run()
