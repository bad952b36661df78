"""`pivoice demo` tells the truth about where it played and ends cleanly on Ctrl-C: real
processes, real signals, the real PortAudio/ALSA stack with no sound card."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import wave
from pathlib import Path

ROOT = Path(__file__).parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT),
       "ALSA_CONFIG_PATH": f"/usr/share/alsa/alsa.conf:{ROOT / 'tests' / 'fixtures' / 'asoundrc.nocard'}"}


def test_demo_on_a_missing_sound_card_says_it_could_not_play_and_fails():
    result = subprocess.run([sys.executable, "-m", "device.cli", "demo", "--speaker", "default"], check=False, cwd=ROOT,
                            capture_output=True, text=True, timeout=120, env=ENV)
    assert result.returncode == 1
    assert "could not play on 'default': no output device at all" in result.stdout
    assert "found out in" in result.stdout and "played on" not in result.stdout
    assert "ALSA lib" not in result.stderr and "Traceback" not in result.stderr


def interrupt_demo(tmp_path: Path, after: str) -> tuple[int, str, str, Path]:
    out = tmp_path / "demo.wav"
    proc = subprocess.Popen([sys.executable, "-m", "device.cli", "demo", "--out", str(out)], cwd=ROOT, env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = []
    try:
        for line in proc.stdout:
            lines.append(line)
            if after in line:
                proc.send_signal(signal.SIGINT)
                break
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
    return proc.returncode, "".join(lines) + stdout, stderr, out


def test_ctrl_c_after_a_reply_ends_cleanly_with_a_valid_wav(tmp_path):
    code, stdout, stderr, out = interrupt_demo(tmp_path, "device   says")
    assert code == 130 and "Traceback" not in stderr, stderr
    assert "interrupted after 1 spoken turn(s)" in stdout and f"what the device said is in {out}" in stdout
    with wave.open(str(out), "rb") as wav:
        assert wav.getframerate() == 24000 and wav.getnframes() > 0  # the reply as far as it played


def test_ctrl_c_before_the_device_spoke_leaves_no_empty_wav(tmp_path):
    code, stdout, stderr, out = interrupt_demo(tmp_path, "idle (solid)")
    assert code == 130 and "Traceback" not in stderr, stderr
    if out.exists():  # only if a reply had already begun to play
        with wave.open(str(out), "rb") as wav:
            assert wav.getnframes() > 0
    else:
        assert "the device said nothing yet" in stdout
