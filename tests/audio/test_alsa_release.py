"""PortAudio's device listing opens every PCM ALSA's configuration defines, so every plugin of
libasound2-plugins (a52 with libavcodec, jack, speex, ...) was loaded into the daemon and stayed
there (~11 MB resident). Once a stream is open the device gives ALSA's configuration back and
only the PCMs it opened stay loaded. Run in a fresh process: the listing happens once per
process (PortAudio keeps it while any device is open)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from .helpers import silence16k

ROOT = Path(__file__).parents[2]

SCRIPT = r"""
import asyncio, json, sys
from hardware.audio import Microphone, _pyaudio
from hardware.bridge import LoopBridge

def plugins():
    return sorted({line.split()[-1].rsplit("/", 1)[-1] for line in open("/proc/self/maps")
                   if "libasound_module_pcm_" in line})

async def main():
    pa = _pyaudio().PyAudio()
    listed = plugins()          # what the listing alone loads
    pa.terminate()
    got = []
    mic = Microphone("fakemic", lambda pcm, over: got.append(len(pcm)), bridge=LoopBridge(), period_ms=50)
    rounds = []
    for _ in range(2):          # and again after a close: ALSA reads its configuration afresh
        mic.open()
        after_open = plugins()
        got.clear()
        for _ in range(500):
            await asyncio.sleep(0.01)
            if len(got) >= 2:
                break
        rounds.append({"plugins": after_open, "periods": len(got), "rate": mic.rate})
        mic.close()
    print(json.dumps({"listed": listed, "rounds": rounds}))

asyncio.run(main())
"""


def run(tmp_path: Path) -> dict:
    raw = tmp_path / "mic.raw"
    raw.write_bytes(silence16k(100) * 50)
    env = {**os.environ, "FAKEMIC_RAW": str(raw), "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_an_open_microphone_keeps_no_alsa_plugin_it_does_not_use(tmp_path):
    out = run(tmp_path)
    if not out["listed"]:
        pytest.skip("no ALSA plugin PCMs configured here (libasound2-plugins not installed)")
    # The fake microphone is ALSA's own file and plug PCMs: no plugin module is needed for it.
    for opened in out["rounds"]:
        assert opened["plugins"] == [], f"still loaded after the stream opened: {opened['plugins']}"
        assert opened["periods"] >= 2 and opened["rate"] == 16000   # and it records


def test_a_pcm_the_device_opens_through_a_plugin_stays_loaded(tmp_path):
    """The release unloads only what nothing holds: a PCM open through a plugin keeps working.
    The speex plugin (noise suppression, here off) stands in for one (libasound2-plugins' conf.d defines it)."""
    if not list(Path("/usr/lib").glob("*/alsa-lib/libasound_module_pcm_speex.so")):
        pytest.skip("libasound2-plugins not installed")
    conf = tmp_path / "asoundrc"
    conf.write_text((ROOT / "tests" / "fixtures" / "asoundrc.fake").read_text() + """
pcm.speexmic {
    type speex
    slave.pcm "fakemic"
    denoise false
    agc false
    hint { show on description "Test microphone through the speex plugin" }
}
""")
    script = SCRIPT.replace('"fakemic"', '"speexmic"')
    raw = tmp_path / "mic.raw"
    raw.write_bytes(silence16k(100) * 50)
    env = {**os.environ, "FAKEMIC_RAW": str(raw), "PYTHONPATH": str(ROOT),
           "ALSA_CONFIG_PATH": f"/usr/share/alsa/alsa.conf:{conf}"}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    for opened in out["rounds"]:
        assert opened["plugins"] == ["libasound_module_pcm_speex.so"]
        assert opened["periods"] >= 2
    assert len(out["listed"]) > 1   # the listing had loaded others too
