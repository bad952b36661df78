"""Real-time audio harness for bench/realtime_bench.py: a private PulseAudio with null sinks at
48 kHz, an echo path (the speaker's monitor looped into the microphone), live recorders whose
samples are placed on the monotonic clock, and players.

    speaker        null sink the device plays into (ALSA "default" -> PulseAudio)
    micfeed        null sink the bench plays speech into
    mic            source = micfeed's monitor: what the device captures
    loopback       speaker.monitor -> micfeed with LATENCY ms at GAIN dB: the device hears itself

Needs: apt-get install -y --no-install-recommends pulseaudio pulseaudio-utils libasound2-plugins
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import wave
from pathlib import Path

import numpy as np
import soxr

RATE = 48000
CLIPS = Path("/usr/share/pocketsphinx/test/data")


class Pulse:
    def __init__(self, runtime: Path) -> None:
        for tool in ("pulseaudio", "pactl", "paplay", "parec"):
            if not shutil.which(tool):
                raise SystemExit(f"{tool} is missing: apt-get install -y --no-install-recommends "
                                 "pulseaudio pulseaudio-utils libasound2-plugins")
        runtime.mkdir(parents=True, exist_ok=True)
        runtime.chmod(0o700)
        self.env = {**os.environ, "XDG_RUNTIME_DIR": str(runtime), "PULSE_SERVER": f"unix:{runtime}/native"}
        sink = f"rate={RATE} channels=1 format=s16le"
        self.proc = subprocess.Popen(
            ["pulseaudio", "-n", "--daemonize=no", "--exit-idle-time=-1", "--use-pid-file=no",
             "--log-target=stderr", "--log-level=error",
             "-L", f"module-native-protocol-unix socket={runtime}/native auth-anonymous=1",
             "-L", f"module-null-sink sink_name=speaker {sink}",
             "-L", f"module-null-sink sink_name=micfeed {sink}",
             "-L", "module-remap-source master=micfeed.monitor source_name=mic",
             "-L", "module-default-device-restore"],
            env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while subprocess.run(["pactl", "info"], env=self.env, capture_output=True, check=False).returncode:
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise SystemExit("the private PulseAudio did not start")
            time.sleep(0.1)
        self.pactl("set-default-sink", "speaker")
        self.pactl("set-default-source", "mic")

    def pactl(self, *args: str) -> str:
        return subprocess.run(["pactl", *args], env=self.env, capture_output=True, text=True, check=True).stdout

    def echo_path(self, latency_ms: int) -> str:
        """Load a loopback speaker.monitor -> micfeed (muted); its sink input's index."""
        module = self.pactl("load-module", "module-loopback", "source=speaker.monitor", "sink=micfeed",
                            f"latency_msec={latency_ms}", "source_dont_move=true", "sink_dont_move=true").strip()
        # The short listing has no owner module: find the loopback's sink input in the long one.
        for block in self.pactl("list", "sink-inputs").split("Sink Input #")[1:]:
            if re.search(rf"Owner Module: {module}\b", block):
                self.echo_gain(block.split()[0], None)
                return block.split()[0]
        raise SystemExit("module-loopback loaded but its sink input was not found")

    def echo_gain(self, loopback: str, db: float | None) -> None:
        """Set a loopback's level in dB (None: muted)."""
        # A linear (amplitude) factor: "-6dB" would be read by pactl as an option.
        self.pactl("set-sink-input-volume", loopback, "0" if db is None else f"{10 ** (db / 20):.5f}")

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(5)


class Recorder:
    """parec in a thread; each 10 ms block stamped with when it arrived, so two recordings can
    be put on the same (monotonic) time axis without trusting their start-up offsets."""

    def __init__(self, pulse: Pulse, source: str) -> None:
        self.proc = subprocess.Popen(["parec", "-d", source, "--raw", "--format=s16le", f"--rate={RATE}",
                                      "--channels=1", "--latency-msec=10"],
                                     env=pulse.env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self._blocks: list[bytes] = []
        self._t0 = float("inf")
        self._count = 0
        self._lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        while chunk := self.proc.stdout.read(960):
            now = time.monotonic()
            with self._lock:
                self._blocks.append(chunk)
                self._count += len(chunk) // 2
                # The earliest start consistent with every arrival: arrival minus audio so far.
                self._t0 = min(self._t0, now - self._count / RATE)

    def samples(self) -> np.ndarray:
        with self._lock:
            return np.frombuffer(b"".join(self._blocks), "<i2").copy()

    def at(self, t: float) -> int:
        """Sample index of monotonic time t."""
        return int((t - self._t0) * RATE)

    def time_of(self, index: int) -> float:
        return self._t0 + index / RATE

    def level_db(self, last_ms: int = 100) -> float:
        with self._lock:
            tail = b"".join(self._blocks[-max(1, last_ms // 10):])
        x = np.frombuffer(tail, "<i2").astype(np.float32) / 32768
        return 20 * np.log10(np.sqrt((x ** 2).mean()) + 1e-9) if len(x) else -120.0

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(5)


def write_wav(path: Path, samples: np.ndarray, rate: int = RATE) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.clip(samples, -32768, 32767).astype("<i2").tobytes())
    return path


def play(pulse: Pulse, sink: str, wav: Path, latency_ms: int = 20) -> subprocess.Popen:
    return subprocess.Popen(["paplay", "-d", sink, f"--latency-msec={latency_ms}", str(wav)], env=pulse.env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def frame_db(x: np.ndarray, n: int = 480) -> np.ndarray:
    """Level of each 10 ms block in dBFS."""
    x = x[: len(x) // n * n].reshape(-1, n).astype(np.float32) / 32768
    return 20 * np.log10(np.sqrt((x ** 2).mean(axis=1)) + 1e-9)


def gcc_phat(reference: np.ndarray, signal: np.ndarray, max_lag: int) -> tuple[int, float]:
    """Lag (samples, >= 0) of reference inside signal and the whitened peak height."""
    size = 1 << (len(reference) + len(signal) - 1).bit_length()
    cross = np.fft.rfft(signal.astype(np.float32), size) * np.conj(np.fft.rfft(reference.astype(np.float32), size))
    corr = np.fft.irfft(cross / (np.abs(cross) + 1e-9), size)[:max_lag]
    lag = int(np.argmax(corr))
    return lag, float(corr[lag])


class CpuMeter:
    """utime + stime of a process (all its threads) from /proc, as % of one core."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self._tick = os.sysconf("SC_CLK_TCK")

    def _cpu_s(self) -> float:
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / self._tick

    def start(self) -> None:
        self._t, self._c = time.monotonic(), self._cpu_s()

    def percent(self) -> float:
        return 100 * (self._cpu_s() - self._c) / (time.monotonic() - self._t)

    def _memory_mb(self) -> dict[str, float]:
        """VmRSS, RssAnon and RssFile of /proc/PID/status, in MB."""
        return {line.split(":")[0]: int(line.split()[1]) / 1024
                for line in Path(f"/proc/{self.pid}/status").read_text().splitlines()
                if line.startswith(("VmRSS:", "RssAnon:", "RssFile:"))}

    def rss_mb(self) -> float:
        return self._memory_mb().get("VmRSS", float("nan"))

    def rss(self) -> str:
        """Resident memory, and its anonymous and file-backed parts: the file part depends on the
        page cache (see evict_libraries), the anonymous part only on the process."""
        fields = self._memory_mb()
        return (f"RSS {fields['VmRSS']:.0f} MB (anonymous {fields['RssAnon']:.0f}, "
                f"files {fields['RssFile']:.0f})")


def evict_libraries() -> int:
    """Drop this Python's and its environment's shared libraries from the page cache (clean pages
    only, no root needed), so that a daemon started next maps them as after a boot, read from
    disk. After `./install.sh --dev` the daemon's RSS read 86 MB instead of 75 until they were
    dropped: importing numpy mapped 15 MB of its files' pages instead of 5 (/proc smaps; the
    cache's state, most likely the large folios the install left, which a fault maps whole).
    Returns how many files were dropped."""
    roots = {Path(sys.prefix), Path(sys.base_prefix)}
    count = 0
    for root in roots:
        for lib in root.glob("lib/python3*/**/*.so*"):
            try:
                fd = os.open(lib, os.O_RDONLY)
            except OSError:
                continue
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
                count += 1
            finally:
                os.close(fd)
    return count


def thread_cpu(pid: int, seconds: float) -> list[tuple[str, float, float]]:
    """(thread name, % of a core, wake-ups/s) per thread over a window, from /proc/PID/task."""
    def snap() -> dict[str, tuple[str, int, int]]:
        out = {}
        for task in Path(f"/proc/{pid}/task").iterdir():
            try:
                comm = (task / "comm").read_text().strip()
                fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
                status = (task / "status").read_text()
                switches = sum(int(line.split()[1]) for line in status.splitlines() if "ctxt_switches" in line)
                out[task.name] = (comm, int(fields[11]) + int(fields[12]), switches)
            except OSError:
                pass
        return out
    tick = os.sysconf("SC_CLK_TCK")
    before = snap()
    time.sleep(seconds)
    after = snap()
    rows = [(f"{comm} [{tid}]", 100 * (t - before[tid][1]) / tick / seconds, (sw - before[tid][2]) / seconds)
            for tid, (comm, t, sw) in after.items() if tid in before]
    return sorted(rows, key=lambda r: -r[1])


def clip48(name: str, scale: float = 1.0) -> np.ndarray:
    x = np.frombuffer((CLIPS / name).read_bytes(), "<i2").astype(np.float32)
    return soxr.resample(x, 16000, RATE) * scale


def rms_db(x: np.ndarray) -> float:
    return 20 * np.log10(np.sqrt(((x.astype(np.float64) / 32768) ** 2).mean()) + 1e-12) if len(x) else -120


def active_rms(x: np.ndarray) -> float:
    levels = frame_db(x)
    blocks = x[: len(levels) * 480].reshape(-1, 480).astype(np.float64)
    keep = blocks[levels > -45]
    return float(np.sqrt((keep ** 2).mean())) if len(keep) else 0.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def calibrate(pulse: Pulse, loop: str, db: float, tmp: Path, spk: Recorder, mic: Recorder) -> tuple[float, float]:
    """Measured (gain dB, delay ms) of the echo path: real speech played on the speaker."""
    pulse.echo_gain(loop, db)
    wav = write_wav(tmp / "calib.wav", clip48("goforward.raw", 0.5))
    start = time.monotonic()
    play(pulse, "speaker", wav).wait()
    time.sleep(0.4)
    end = time.monotonic()
    pulse.echo_gain(loop, None)
    s, m = spk.samples()[spk.at(start):spk.at(end)], mic.samples()[mic.at(start):mic.at(end)]
    n = min(len(s), len(m))
    lag, _ = gcc_phat(s[:n], m[:n], RATE // 2)
    ref, got = s[: n - lag], m[lag:n]
    # Level ratio over the frames where the speaker is loud: a least-squares fit would be biased
    # low by the loopback's adaptive resampler drifting the alignment over the clip.
    loud = frame_db(ref) > -45
    if not loud.any():
        return -120.0, 1000 * lag / RATE                # nothing came through (the path is still starting)
    blocks = lambda x: x[: len(loud) * 480].reshape(-1, 480)[loud].astype(np.float64)
    gain = np.sqrt((blocks(got) ** 2).mean() / max((blocks(ref) ** 2).mean(), 1.0))
    return 20 * np.log10(max(gain, 1e-6)), 1000 * lag / RATE


def wait_quiet(spk: Recorder, seconds: float = 1.0, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    quiet_since = time.monotonic()
    while time.monotonic() < deadline:
        if spk.level_db(50) > -60:
            quiet_since = time.monotonic()
        if time.monotonic() - quiet_since >= seconds:
            return
        time.sleep(0.05)


def first_word(x: np.ndarray) -> int:
    """The sample where a clip's first word starts: its first frame within 25 dB of its loudest,
    not the room before it."""
    levels = frame_db(x.astype(np.int16))
    return int(np.argmax(levels > levels.max() - 25)) * 480


def into_reply(pulse: Pulse, spk: Recorder, question: Path, gain_db: float, timeout: float = 6.0) -> float | None:
    """Ask for a long reply (``question`` into the microphone) and go 0.5 s into it; the level its
    echo reaches the microphone at (RMS of the speaker's last 0.5 s, times the echo path's
    measured gain), or None when no reply started within ``timeout`` s."""
    play(pulse, "micfeed", question).wait()
    deadline = time.monotonic() + timeout
    while spk.level_db(30) < -45 and time.monotonic() < deadline:
        time.sleep(0.01)
    if time.monotonic() >= deadline:
        return None
    time.sleep(0.5)
    return active_rms(spk.samples()[spk.at(time.monotonic() - 0.5):]) * 10 ** (gain_db / 20)
