"""Audio tests go through PortAudio and ALSA; ALSA reads our fake devices' config.

ALSA_CONFIG_PATH must be set before PortAudio first initialises ALSA in this process."""

import os
import subprocess
from pathlib import Path

import pytest

from ..sdnotify import NotifySocket

os.environ["ALSA_CONFIG_PATH"] = f"/usr/share/alsa/alsa.conf:{Path(__file__).parents[1] / 'fixtures' / 'asoundrc.fake'}"

PULSE_RATE = 48000


@pytest.fixture
def pulse(tmp_path, monkeypatch):
    """A private PulseAudio (ALSA's `default` goes to it): a null sink "speaker" that plays in
    real time, its monitor the default source. Yields the server's process, once it has said
    it is ready (sd_notify READY=1, which PulseAudio sends)."""
    runtime = tmp_path / "pulse"
    runtime.mkdir(mode=0o700)
    env = {"XDG_RUNTIME_DIR": str(runtime), "PULSE_SERVER": f"unix:{runtime}/native"}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    notify = NotifySocket(tmp_path / "pulse-notify")
    proc = subprocess.Popen(
        ["pulseaudio", "-n", "--daemonize=no", "--exit-idle-time=-1", "--use-pid-file=no",
         "-L", f"module-native-protocol-unix socket={runtime}/native auth-anonymous=1",
         "-L", f"module-null-sink sink_name=speaker rate={PULSE_RATE} channels=1 format=s16le"],
        env={**os.environ, **env, "NOTIFY_SOCKET": notify.path}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        notify.until("READY")
    except AssertionError:
        proc.kill()
        proc.wait(5)
        raise
    finally:
        notify.close()
    subprocess.run(["pactl", "set-default-sink", "speaker"], check=True, capture_output=True)
    subprocess.run(["pactl", "set-default-source", "speaker.monitor"], check=True, capture_output=True)
    yield proc
    proc.terminate()
    proc.wait(5)
