"""The stop word in the running daemon: a reply stops, the server is told, nothing goes up."""

from __future__ import annotations

import shutil
import subprocess
import wave

import numpy as np
import pytest

from device.state import DeviceState

pytest.importorskip("pymicro_wakeword", reason="the wake extra is not installed")
pytestmark = pytest.mark.skipif(shutil.which("flite") is None, reason="flite is not installed")


def spoken16k(tmp_path, text: str) -> bytes:
    out = tmp_path / "say.wav"
    subprocess.run(["flite", "-voice", "rms", "-t", text, "-o", str(out)], check=True)
    with wave.open(str(out)) as w:
        assert w.getframerate() == 16000
        speech = w.readframes(w.getnframes())
    return bytes(16000) + speech + bytes(16000)       # half a second of quiet either side


async def test_the_stop_word_stops_the_reply_and_nothing_goes_up(device_factory, tmp_path):
    device = await device_factory(wake={"word": "hey_jarvis", "stop": "alexa"})
    app = device.app
    await device.wait_state(DeviceState.IDLE)
    app.controls.say("Tell me a long story about a robot and a cat, please, with many details.")
    await device.wait_state(DeviceState.SPEAKING)
    appends = app.conversation.stats.appends
    device.mic.say(spoken16k(tmp_path, "alexa"))
    await device.wait_for(lambda: device.count("barge_in"), "the stop word's barge-in")
    assert [e.data["cause"] for e in device.of("barge_in")] == ["stop_word"]
    await device.wait_for(lambda: not app.pipeline.speaking, "the speaker to stop")
    await device.mic.wait_said()
    assert app.conversation.stats.truncates == 1              # what was heard is what the model keeps
    assert app.conversation.stats.appends == appends          # nothing the person said went up
    status = app.status()
    assert status["stop_words"] == 1 and status["wake_words"] == 0
    assert np.frombuffer(device.speaker.played_pcm(), "<i2").any()   # it did speak before
