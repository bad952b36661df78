"""With no sound card, ALSA's and JACK's library messages stay out of stderr (and so out of the
journal), and a device that keeps failing is logged at a slowing rate. Real processes, the real
libasound/libjack/PortAudio, an ALSA config whose default card does not exist."""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

from hardware.quiet import RetryLog

ROOT = Path(__file__).parents[2]
NOCARD = {"ALSA_CONFIG_PATH": f"/usr/share/alsa/alsa.conf:{ROOT / 'tests' / 'fixtures' / 'asoundrc.nocard'}",
          "PYTHONPATH": str(ROOT)}
NOISE = re.compile(r"ALSA lib|jack", re.IGNORECASE)


def config(tmp_path: Path) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(f'[realtime]\nsimulator = true\n[audio]\nbackend = "pyaudio"\n[gpio]\npin_factory = "mock"\n'
                    f'[control]\nsocket = "{tmp_path / "c.sock"}"\n')
    return path


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], check=False, cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, **NOCARD})


def test_the_environment_does_provoke_library_noise():
    # the control: PortAudio initialised without our handlers floods stderr here
    result = run("-c", "import pyaudio; pyaudio.PyAudio().terminate()")
    assert re.search(r"ALSA lib", result.stderr) and re.search(r"jack", result.stderr, re.IGNORECASE)


def test_doctor_and_devices_print_no_library_noise(tmp_path):
    for command in ("doctor", "devices"):
        result = run("-m", "device.cli", command, "--config", str(config(tmp_path)))
        assert result.returncode == 1, result.stdout
        assert not NOISE.search(result.stderr + result.stdout), result.stderr
        assert "no input device at all" in result.stdout


def test_run_with_no_card_logs_the_failure_once_then_ever_more_rarely(tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "device.cli", "run", "--config", str(config(tmp_path))], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env={**os.environ, **NOCARD})
    lines = []
    try:
        for line in proc.stderr:
            lines.append(line)
            if "microphone: still failing after 4 attempts" in line:
                break
        proc.send_signal(signal.SIGINT)
        lines += proc.stderr.readlines()
    finally:
        proc.kill()
        proc.wait()
    text = "".join(lines)
    assert "microphone: still failing after 4 attempts" in text, text
    assert not NOISE.search(text), text
    mic = [line for line in lines if "hardware.audio: microphone" in line]
    # attempts 1, 2 and 4 of 4 were logged; the first with its cause at ERROR
    assert len(mic) == 3 and " ERROR " in mic[0] and "no input device at all" in mic[0]


def test_retry_log_slows_down_and_speaks_again_on_a_new_cause_or_recovery(caplog):
    log = logging.getLogger("test.retry")
    retries = RetryLog(log, "speaker", max_every=256)
    with caplog.at_level(logging.INFO, logger="test.retry"):
        for _ in range(8640):  # a day of retries every 10 s
            retries.failed("card gone")
        day = len(caplog.records)
        retries.failed("device busy")
        retries.failed("device busy")
        retries.cleared()
    assert [r.levelname for r in caplog.records[:2]] == ["ERROR", "WARNING"]
    assert 8 <= day <= 50  # 1, 2, 4, ... 256, then every 256 attempts: 41 lines, not 8,640
    assert caplog.records[day].getMessage() == "speaker: device busy" and caplog.records[day].levelname == "ERROR"
    assert caplog.records[-1].getMessage() == "speaker: working again after 2 attempts"
