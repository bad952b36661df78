"""THE bench of record for audio: the whole daemon, run as a user runs it, through a real-time
audio stack, with the device's own voice coming back into its microphone.

    PYTHONPATH=. .venv/bin/python bench/realtime_bench.py [--levels=-18:40,-6:40,0:25]
        [--variants guarded,off] [--scenarios cpu,selfint,bargein,erle] [--window 10]

Stack: a private PulseAudio (bench/rtaudio.py) with null sinks at 48 kHz; `pivoice run --config X`
as a subprocess with [audio] input/output_device = "default" (ALSA -> PulseAudio) talking to
`pivoice simulator` on loopback (a separate process, so its CPU is not counted as the device's);
an echo path speaker.monitor -> micfeed (module-loopback) at each LEVEL:LATENCY (dB:ms), its gain
and delay verified by cross-correlation. Speech is played into the microphone in real time with
paplay; the speaker and the microphone are recorded with parec. The events come from the
daemon's own `pivoice events --json` stream.

Each variant is a config ("guarded" = today's default echo guard; "off" = no echo handling, the
naive baseline; "half_duplex"; "webrtc" = [audio] echo_cancel = "webrtc" once integrated). Printed:
  cpu      CPU of the daemon connected and silent (% of one core; x10 = Pi Zero 2 W), RSS; measured
           from 6.5 s after the start: the steady state of a silent room (the microphone hands
           over 150 ms at a time after 5 s of nothing, device/audio/pipeline.py). First the device
           alone, as in a room, silent and in three conversations, before the bench loads its echo
           paths and recorders (bench/rtalone.py: they make PulseAudio hand the microphone over in
           ~5 ms blocks); then again with them, beside the other figures
  profile  per thread (/proc) and py-spy, connected and silent; per thread in each selfint window
  selfint  a 2 s question, then WINDOW s with the speaker open: user turns the server committed
           beyond the one asked, replies cancelled, barge-ins (server_vad / voice) -- the device
           interrupting itself; talk-overs it held and dismissed (the speaker went silent for ~0.3 s
           and the reply played on: device/audio/bargehold.py); CPU during that conversation
  bargein  a person talks over a long reply at the level its echo reaches the microphone:
           detected (a barge-in event) and onset of their speech to a silent speaker (ms, from
           the recordings)
  words    short words ("no", "stop", "hold on"...) said over a long reply at its echo's level:
           how many stopped it, were held and dismissed (it played on), went unheard (bench/rtwords.py)
  erle     WebRTC AEC3 (device/audio/aec.py) run offline on the real-time recordings of the
           selfint window: how much of the device's voice it removes there
--room-noise DB plays fan-like (pink) noise into the microphone at DB dBFS for the whole run after
the echo paths are calibrated: a real room is not digital silence between words.
Not a test: it prints, it does not assert.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import soxr

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(Path(__file__).parent)]

import rtalone
import rtwake
import rtwords
from rtaudio import (
    RATE,
    CpuMeter,
    evict_libraries,
    first_word,
    into_reply,
    calibrate,
    free_port,
    wait_quiet,
    Pulse,
    Recorder,
    active_rms,
    clip48,
    frame_db,
    gcc_phat,
    play,
    rms_db,
    thread_cpu,
    write_wav,
)

PIVOICE = [sys.executable, "-m", "device.cli"]
VARIANTS = {"guarded": {"echo_cancel": "off", "echo_guard": "guarded"},
            "off": {"echo_cancel": "off", "echo_guard": "off"},
            "half_duplex": {"echo_cancel": "off", "echo_guard": "half_duplex"},
            "webrtc": {"echo_cancel": "webrtc"}, "speex": {"echo_cancel": "speex"},
            "wake": {"echo_cancel": "webrtc", "wake": "hey_jarvis"},
            "webrtc100": {"echo_cancel": "webrtc", "mic_period_ms": 100},
            "webrtc20": {"echo_cancel": "webrtc", "mic_period_ms": 20}}
#: the wake word variant takes no follow-up turn, so each wake word trial stands alone
WAKE_TOML = '[wake]\nword = "{word}"\nfollow_up = 0\n'



class Daemon:
    """`pivoice run` with a config of ours, and its `pivoice events --json` stream."""

    def __init__(self, tmp: Path, pulse: Pulse, url: str, audio: dict, name: str, extra_env: dict | None = None,
                 extra_toml: str = "") -> None:
        self.config = tmp / f"{name}.toml"
        wake = audio.get("wake", "")
        audio_toml = "\n".join(f'{k} = {json.dumps(v)}' for k, v in audio.items() if k != "wake")
        self.config.write_text(
            f'[realtime]\nurl = "{url}"\nsimulator = false\n\n'
            f'[audio]\nbackend = "pyaudio"\ninput_device = "default"\noutput_device = "default"\n{audio_toml}\n\n'
            f'[turns]\nmode = "server_vad"\n\n[gpio]\npin_factory = "mock"\n\n'
            f'{WAKE_TOML.format(word=wake) if wake else ""}\n[control]\nsocket = "{tmp}/{name}.sock"\n{extra_toml}')
        self.socket = tmp / f"{name}.sock"
        env = {**pulse.env, "OPENAI_API_KEY": "bench-key", "PYTHONPATH": str(ROOT), **(extra_env or {})}
        self.log = open(tmp / f"{name}.log", "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen([*PIVOICE, "run", "--config", str(self.config)], env=env, cwd=ROOT,
                                     stdout=self.log, stderr=subprocess.STDOUT)
        self.events: list[tuple[float, dict]] = []
        self._env = env
        self._wait(lambda: Path(f"{tmp}/{name}.sock").exists(), 20, "control socket")
        self.stream = subprocess.Popen([*PIVOICE, "events", "--json", "--config", str(self.config)], env=env,
                                       cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        threading.Thread(target=self._read, daemon=True).start()
        log = Path(self.log.name)
        self._wait(lambda: "(link_up)" in log.read_text(errors="replace"), 20, "a Realtime session")

    def _wait(self, done, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                lines = [x for x in Path(self.log.name).read_text(errors="replace").splitlines()
                         if x.strip() and not x.startswith(("ALSA", "Cannot connect", "jack", "Jack"))]
                raise RuntimeError(f"the daemon did not reach {what}: {lines[-1] if lines else '(no output)'}")
            time.sleep(0.05)

    def _read(self) -> None:
        for line in self.stream.stdout:
            try:
                self.events.append((time.monotonic(), json.loads(line)))
            except ValueError:
                pass

    def since(self, t: float, kind: str) -> list[tuple[float, dict]]:
        return [(at, e) for at, e in list(self.events) if at >= t and e.get("kind") == kind]

    def stop(self) -> None:
        for proc in (getattr(self, "stream", None), self.proc):
            if proc and proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    proc.kill()
        self.log.close()


def self_interruptions(d: Daemon, pulse: Pulse, loop: str, db: float, tmp: Path, window: float, spk: Recorder,
                       threads: list | None = None):
    # Windows apart: the person of the last barge-in can still get a reply (a pause in their clip
    # makes two turns), and one played over this question put its voice into this window's
    # counts (ERLE 6 dB at 0 dB in a full run; 47 dB when that window ran first).
    wait_quiet(spk, seconds=2.5, timeout=20.0)
    pulse.echo_gain(loop, db)
    cpu = CpuMeter(d.proc.pid)
    if threads is not None:   # per thread over the same window (--scenarios profile)
        worker = threading.Thread(target=lambda: threads.extend(thread_cpu(d.proc.pid, window)), daemon=True)
        worker.start()
    before = rtwake.status(d)
    aec_before = before.get("echo_canceller")
    start = time.monotonic()
    cpu.start()
    play(pulse, "micfeed", write_wav(tmp / "question.wav", clip48("goforward.raw"))).wait()
    time.sleep(max(0.0, window - (time.monotonic() - start)))
    percent = cpu.percent()
    end = time.monotonic()
    pulse.echo_gain(loop, None)
    wait_quiet(spk)
    replies = [e for _, e in d.since(start, "reply")]
    barges = [e.get("cause") for _, e in d.since(start, "barge_in")]
    return {"turns": len(d.since(start, "turn")), "cancelled": sum(e.get("status") == "cancelled" for e in replies),
            "replies": len(replies), "server_vad": barges.count("server_vad"), "voice": barges.count("voice"),
            "cpu": percent, "window": (start, end), "first_sample_ms": first_sample_ms(d, spk, start),
            "erle_device": rtwake.erle_between(aec_before, (after := rtwake.status(d)).get("echo_canceller")),
            "dismissed": after.get("talk_over_dismissed", 0) - before.get("talk_over_dismissed", 0)}


RSS_PART = """
import sys
def rss():
    return int([x for x in open("/proc/self/status") if x.startswith("VmRSS")][0].split()[1]) / 1024
import numpy
import numpy as np
before = rss()
if sys.argv[1] == "portaudio":
    import pyaudio
    pyaudio.PyAudio()
    if sys.argv[2:] == ["released"]:
        from hardware.portaudio import release_alsa_config
        release_alsa_config()
else:   # as the daemon opens it: livekit's library alone (device/audio/lkffi.py)
    from device.audio import aec
    aec.create("webrtc").process(np.zeros(160, np.int16))
print(f"{rss() - before:.0f}")
"""


def rss_parts(pulse: Pulse, tmp: Path) -> str:
    """Resident MB that PortAudio's device listing and livekit's echo canceller add to a bare
    Python with numpy. PortAudio opens every ALSA PCM it can list, so each plugin configured
    in /etc/alsa/conf.d (libasound2-plugins: the a52 encoder brings libavcodec, jack libjack...)
    is loaded into the process; measured again with ALSA's own config alone (no conf.d hooks),
    which is what a device without those plugins loads."""
    bare = tmp / "alsa-without-plugins.conf"
    text = Path("/usr/share/alsa/alsa.conf").read_text()
    bare.write_text(re.sub(r"(?ms)^@hooks \[.*?^\]", "", text, count=1))
    here = {**pulse.env, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    runs = {"portaudio": here, "portaudio-bare": {**here, "ALSA_CONFIG_PATH": str(bare)},
            "portaudio-released": here, "livekit": here}
    out = {}
    for name, env in runs.items():
        run = subprocess.run([sys.executable, "-c", RSS_PART, *name.split("-")], env=env,
                             capture_output=True, text=True)
        out[name] = run.stdout.strip().splitlines()[-1] if run.returncode == 0 and run.stdout.strip() else "n/a"
    return (f"PortAudio's device listing {out['portaudio']} MB ({out['portaudio-bare']} MB without the ALSA plugins "
            f"of libasound2-plugins; {out['portaudio-released']} MB once ALSA's configuration is given back, "
            f"as the daemon does after opening a device), livekit's AEC3 {out['livekit']} MB")


def rss_pulse_only(tmp: Path, pulse: Pulse, url: str, name: str) -> str:
    """The same daemon, with ALSA's own config and the PulseAudio plugin only: the resident
    memory of a device that has no other ALSA plugins installed."""
    conf = tmp / "alsa-pulse-only.conf"
    text = re.sub(r"(?ms)^@hooks \[.*?^\]", "", Path("/usr/share/alsa/alsa.conf").read_text(), count=1)
    conf.write_text(text + "\npcm.!default { type pulse }\nctl.!default { type pulse }\n")
    try:
        d = Daemon(tmp, pulse, url, VARIANTS[name], f"{name}-pulse-only", {"ALSA_CONFIG_PATH": str(conf)},
                   '[metrics]\nlisten = "127.0.0.1:0"\n')
    except RuntimeError as exc:
        return f"n/a ({exc})"
    try:
        time.sleep(4.0)
        return f"{CpuMeter(d.proc.pid).rss_mb():.0f}"
    finally:
        d.stop()


def first_sample_ms(d: Daemon, spk: Recorder, start: float) -> tuple[int | None, int | None]:
    """The first reply delta (the daemon's own wall-clock stamp, put on our monotonic clock) to
    the first sound in the speaker's recording; and to the speaker thread taking the first
    sample (the daemon's playback_started)."""
    deltas = d.since(start, "first_delta")
    if not deltas:
        return None, None
    at = deltas[0][1]["wall"] - (time.time() - time.monotonic())
    # Any sample at all: the reply may begin with its own quiet (a null sink is digital zero).
    levels = frame_db(spk.samples()[spk.at(at):spk.at(at + 2.0)], 48)
    loud = np.flatnonzero(levels > -100)
    started = d.since(start, "playback_started")
    handed = int(1000 * (started[0][1]["wall"] - deltas[0][1]["wall"])) if started else None
    return (int(loud[0]) if len(loud) else None), handed


def barge_in(d: Daemon, pulse: Pulse, loop: str, db: float, gain_db: float, tmp: Path, spk: Recorder,
             mic: Recorder, *, echo: bool = True) -> dict:
    """A long reply; a person talks over it at the level the reply's echo reaches the mic (with
    the echo path open, or muted: the same person without the device hearing itself)."""
    pulse.echo_gain(loop, db if echo else None)
    echo_level = into_reply(pulse, spk, write_wav(tmp / "long.wav", clip48("numbers.raw")), gain_db)
    if echo_level is None:
        pulse.echo_gain(loop, None)
        return {"note": "no reply started"}
    person = clip48("goforward.raw")
    person = person[max(0, first_word(person) - RATE // 10):]   # 100 ms before the word
    person *= echo_level / max(active_rms(person), 1.0)
    played_at = time.monotonic()
    play(pulse, "micfeed", write_wav(tmp / "person.wav", person)).wait()
    time.sleep(1.5)
    pulse.echo_gain(loop, None)
    wait_quiet(spk)
    onset = _onset(mic, person, played_at)
    result = _speaker_stop(spk, onset)
    barges = [(at, e.get("cause")) for at, e in d.since(onset - 0.2, "barge_in")]
    # A voice barge-in needs 100+ ms of speech: an event before the first word is not the person's.
    barges = [(at, c) for at, c in barges if onset < at < onset + 2.0]
    return {**result, "detected": [c for _, c in barges], "echo_dbfs": rms_db(np.array([echo_level])),
            "event_after_ms": int(1000 * (barges[0][0] - onset)) if barges else None}


def _onset(mic: Recorder, person: np.ndarray, played_at: float) -> float:
    """When the person's first word reached the microphone: the clip found in the recording."""
    m = mic.samples()
    i0 = mic.at(played_at - 0.1)
    lag, _ = gcc_phat(person.astype(np.int16), m[i0:i0 + len(person) + RATE], RATE)
    return mic.time_of(i0 + lag + first_word(person))


def _speaker_stop(spk: Recorder, onset: float) -> dict:
    """Was the speaker playing in the 300 ms before the onset; ms from onset to lasting silence."""
    levels = frame_db(spk.samples()[spk.at(onset - 0.3):spk.at(onset + 4)])
    was_playing = bool((levels[:30] > -45).any())
    silent = np.convolve(levels[30:] < -60, np.ones(50), "valid") == 50   # 500 ms of silence from here
    return {"playing_at_onset": was_playing, "onset_to_silent_ms": int(np.argmax(silent)) * 10 if silent.any() else None}


def measurable(r: dict) -> bool:
    """The reply was playing at the onset and did not end by itself right then."""
    stop = r.get("onset_to_silent_ms")
    return "note" not in r and r["playing_at_onset"] and (bool(r["detected"]) or stop is None or stop >= 150)


def describe(r: dict) -> str:
    if "note" in r:
        return r["note"]
    if not r["playing_at_onset"]:
        return "not measurable: the device had already stopped (it interrupted itself)"
    heard = ", ".join(r["detected"]) or "none"
    stop = r["onset_to_silent_ms"]
    verdict = ("stopped" if r["detected"] else "not stopped: the reply played to its end") if stop is not None else "still playing"
    if not r["detected"] and stop is not None and stop < 150:
        return "not measurable: the reply stopped as the person started, before any barge-in of theirs"
    return (f"person at {r['echo_dbfs']:.0f} dBFS; barge-in events {heard} (first {r['event_after_ms']} ms after "
            f"onset); onset to silent speaker {stop} ms ({verdict})")


def profile(d: Daemon, tmp: Path, name: str, seconds: int = 10) -> None:
    """Where the daemon's CPU goes, connected and silent: per thread (/proc), then py-spy."""
    print("  per thread, connected and silent (% of a core, context switches/s):")
    for thread, percent, wakeups in thread_cpu(d.proc.pid, 10.0):
        if percent > 0.01 or wakeups > 1:
            print(f"    {percent:5.2f} %  {wakeups:6.0f}/s  {thread}")
    out = tmp / f"{name}.pyspy.txt"
    spy = Path(sys.executable).with_name("py-spy")
    if not spy.exists():
        print("  profile: py-spy is not installed (pip install py-spy)")
        return
    subprocess.run([str(spy), "record", "-p", str(d.proc.pid), "-d", str(seconds), "-r", "200", "--threads",
                    "-f", "raw", "-o", str(out)], capture_output=True, check=False)
    stacks = [line.rsplit(" ", 1) for line in out.read_text().splitlines() if " " in line] if out.exists() else []
    total = sum(int(n) for _, n in stacks) or 1
    inclusive: dict[str, int] = {}
    for stack, n in stacks:
        frames = stack.split(";")
        thread = frames[0].split(":")[-1].strip() or frames[0]
        ours = [f for f in frames[1:] if any(k in f for k in ("device/", "hardware/", "pyaudio", "soxr", "webrtcvad"))]
        for fn in dict.fromkeys([*ours, frames[-1]]):
            key = f"{thread} :: {fn}"
            inclusive[key] = inclusive.get(key, 0) + int(n)
    print(f"  py-spy ({seconds} s, {total} samples of busy threads; inclusive; raw stacks in {out}):")
    for key, n in sorted(inclusive.items(), key=lambda kv: -kv[1])[:16]:
        print(f"    {100 * n / total:5.1f} %  {key[:150]}")


def erle(spk: Recorder, mic: Recorder, window: tuple[float, float], question_s: float = 3.5) -> dict | None:
    """AEC3 on the real-time recordings: far end = the speaker, mic = the microphone source."""
    from device.audio import aec
    try:
        canceller = aec.create("webrtc", 16000)
    except aec.AecUnavailable:
        return None
    start, end = window
    far = soxr.resample(spk.samples()[spk.at(start):spk.at(end)].astype(np.float32), RATE, 16000)
    near = soxr.resample(mic.samples()[mic.at(start):mic.at(end)].astype(np.float32), RATE, 16000)
    n = min(len(far), len(near)) // 160
    far, near = far[: n * 160].astype(np.int16), near[: n * 160].astype(np.int16)
    out = np.zeros_like(near)
    for i in range(n):
        s = slice(i * 160, (i + 1) * 160)
        canceller.reference(far[s], at=i * 0.01)
        out[s] = canceller.process(near[s], at=(i + 1) * 0.01)
    skip = int(question_s * 100)                      # the question itself is not echo
    e_in = frame_db(near, 160)[skip:]
    mask = e_in > -50
    if mask.sum() < 20:
        return None
    p_in = (10 ** (e_in[mask] / 10)).sum()
    p_out = (10 ** (frame_db(out, 160)[skip:][mask] / 10)).sum()
    return {"erle": 10 * np.log10(p_in / p_out), "vad_in": _vad_share(near, skip, mask), "vad_out": _vad_share(out, skip, mask)}


def _vad_share(x: np.ndarray, skip: int, mask: np.ndarray) -> float:
    """Share of the echo's 20 ms frames webrtcvad (aggressiveness 2, as the device) calls speech."""
    import webrtcvad
    vad = webrtcvad.Vad(2)
    frames = mask[: len(mask) // 2 * 2].reshape(-1, 2).any(axis=1)
    start = skip * 160
    hits = [vad.is_speech(x[start + i * 320:start + (i + 1) * 320].tobytes(), 16000)
            for i in np.flatnonzero(frames) if start + (i + 1) * 320 <= len(x)]
    return float(np.mean(hits)) if hits else float("nan")


def room_noise(pulse: Pulse, tmp: Path, db: float) -> subprocess.Popen:
    """Pink noise (a fan, a fridge, a street) played into the microphone in a loop."""
    rng = np.random.default_rng(7)
    n = 30 * RATE
    spectrum = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1 / RATE)
    spectrum /= np.sqrt(np.maximum(f, 50.0))
    x = np.fft.irfft(spectrum, n)
    x *= 32768 * 10 ** (db / 20) / np.sqrt((x ** 2).mean())
    wav = write_wav(tmp / "room-noise.wav", x)
    return subprocess.Popen(["sh", "-c", f'while :; do paplay -d micfeed --latency-msec=100 "{wav}"; done'],
                            env=pulse.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--levels", default="-18:40,-6:40,0:25", help="echo paths as DB:LATENCY_MS,...")
    parser.add_argument("--variants", default="guarded,off", help=f"configs to compare: {', '.join(VARIANTS)}")
    parser.add_argument("--scenarios", default="cpu,selfint,bargein,erle,wake")
    parser.add_argument("--window", type=float, default=8.0, help="seconds of open speaker after the question")
    parser.add_argument("--room-noise", type=float, default=None, metavar="DB",
                        help="pink noise into the microphone at this level (dBFS) after calibration")
    args = parser.parse_args()
    levels = [(float(db), int(ms)) for db, ms in (x.split(":") for x in args.levels.split(","))]
    scenarios = set(args.scenarios.split(","))
    tmp = Path(tempfile.mkdtemp(prefix="pivoice-rt-"))
    pulse = Pulse(tmp / "pulse")
    print(f"page cache: {evict_libraries()} shared libraries of this Python dropped, so the daemon maps "
          "them as after a boot (bench/rtaudio.py: evict_libraries)")
    sim = spk = mic = noise = None
    try:
        port = free_port()
        sim = subprocess.Popen([*PIVOICE, "simulator", "--port", str(port)], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1.0)
        if "cpu" in scenarios:   # before any echo path or recorder exists (bench/rtalone.py)
            print("CPU of the device alone on its PulseAudio, as in a room (no echo path, no recorders; "
                  "bench/rtalone.py):")
            for name in args.variants.split(","):
                cpu_alone(name, tmp, pulse, f"ws://127.0.0.1:{port}/v1/realtime", args.window)
        loops = {ms: pulse.echo_path(ms) for ms in sorted({ms for _, ms in levels})}
        spk, mic = Recorder(pulse, "speaker.monitor"), Recorder(pulse, "mic")
        print("echo path    set dB/ms   measured gain dB / delay ms (cross-correlation, real speech)")
        measured = {}
        calibrate(pulse, loops[levels[0][1]], 0.0, tmp, spk, mic)   # the loopbacks settle on first use
        for db, ms in levels:
            measured[db, ms] = calibrate(pulse, loops[ms], db, tmp, spk, mic)
            print(f"             {db:+5.0f}/{ms:<4d}  {measured[db, ms][0]:+6.1f} / {measured[db, ms][1]:5.1f}")
        if args.room_noise is not None:
            noise = room_noise(pulse, tmp, args.room_noise)
            print(f"room noise   pink noise into the microphone at {args.room_noise:+.0f} dBFS throughout")
        for name in args.variants.split(","):
            run_variant(name, tmp, pulse, f"ws://127.0.0.1:{port}/v1/realtime", levels, loops, measured,
                        scenarios, args.window, spk, mic)
    finally:
        if noise:
            os.killpg(noise.pid, signal.SIGKILL)
            noise.wait(5)
        for thing in (spk, mic):
            if thing:
                thing.close()
        if sim:
            sim.terminate()
            sim.wait(5)
        pulse.close()
    print(f"(logs and configs in {tmp})")


def cpu_alone(name: str, tmp: Path, pulse: Pulse, url: str, window: float) -> None:
    try:
        d = Daemon(tmp, pulse, url, VARIANTS[name], f"{name}-alone")
    except RuntimeError as exc:
        print(f"  [{name}] not run: {exc}")
        return
    try:
        # The same question as the others, after the word ("what time is it" would make the
        # simulator call a tool and answer twice: 7.1-7.6 % of a core with or without a wake word)
        spoken = (np.concatenate([rtwake.flite48("hey jarvis", "slt"), np.zeros(RATE // 5), clip48("goforward.raw")])
                  if "wake" in VARIANTS[name] else None)
        rtalone.report(name, rtalone.measure(d, pulse, tmp, window, spoken))
    finally:
        d.stop()


def run_variant(name, tmp, pulse, url, levels, loops, measured, scenarios, window, spk, mic) -> None:  # noqa: C901
    try:
        d = Daemon(tmp, pulse, url, VARIANTS[name], name)
    except RuntimeError as exc:
        print(f"\n[{name}] not run: {exc}")
        return
    try:
        print(f"\n[{name}] {VARIANTS[name]}")
        if "cpu" in scenarios:
            time.sleep(6.5)       # past the pipeline's IDLE_AFTER_S: the steady state of a silent room
            cpu = CpuMeter(d.proc.pid)
            cpu.start()
            time.sleep(15.0)      # long enough for 0.1 % resolution (100 Hz ticks)
            idle = cpu.percent()
            print(f"  connected, silent, with the bench's echo paths and recorders: CPU {idle:.2f} % of a core "
                  f"(Pi Zero 2 W ~{10 * idle:.0f} %), {cpu.rss()}")
            print(f"  RSS, what two parts add on their own in a bare Python here: {rss_parts(pulse, tmp)}")
            print(f"  RSS with ALSA configured for PulseAudio alone (no other plugin loaded): "
                  f"{rss_pulse_only(tmp, pulse, url, name)} MB")
        if "profile" in scenarios:
            profile(d, tmp, name)
        for db, ms in levels if "wake" not in VARIANTS[name] else []:   # its questions need the word
            label = f"  echo {db:+.0f} dB/{ms} ms:"
            if "selfint" in scenarios:
                threads: list | None = [] if "profile" in scenarios else None
                r = self_interruptions(d, pulse, loops[ms], db, tmp, window, spk, threads)
                print(f"{label} turns {r['turns']} (1 asked), replies {r['replies']} ({r['cancelled']} cancelled), "
                      f"barge-ins server_vad {r['server_vad']} voice {r['voice']} (talk-overs held and dismissed, "
                      f"the reply played on: {r['dismissed']}); CPU in conversation with the bench's instruments "
                      f"{r['cpu']:.2f} % (Pi Zero 2 W ~{10 * r['cpu']:.0f} %); first delta to first sample "
                      f"at the speaker {r['first_sample_ms'][0]} ms (handed to the speaker's thread after "
                      f"{r['first_sample_ms'][1]} ms)")
                if threads:
                    print(f"{label} per thread in that conversation (% of a core, context switches/s):")
                    for thread, percent, wakeups in threads:
                        if percent > 0.01 or wakeups > 1:
                            print(f"    {percent:5.2f} %  {wakeups:6.0f}/s  {thread}")
                if r["erle_device"] is not None:
                    print(f"{label} the daemon's own echo canceller in that window: ERLE {r['erle_device']:.1f} dB")
                if "erle" in scenarios:
                    e = erle(spk, mic, r["window"])
                    print(f"{label} AEC3 offline on these recordings: " + ("n/a" if e is None else
                          f"ERLE {e['erle']:.1f} dB, echo frames webrtcvad calls speech {e['vad_in']:.0%} -> "
                          f"{e['vad_out']:.0%}"))
            if "bargein" in scenarios:
                r = barge_in(d, pulse, loops[ms], db, measured[db, ms][0], tmp, spk, mic)
                print(f"{label} barge-in at the echo's level: {describe(r)}")
                if not measurable(r):
                    r = barge_in(d, pulse, loops[ms], db, measured[db, ms][0], tmp, spk, mic, echo=False)
                    print(f"{label} the same person, echo path muted: {describe(r)}")
            if "words" in scenarios:
                print(f"{label} {rtwords.describe(rtwords.short_words(d, pulse, loops[ms], db, measured[db, ms][0], tmp, spk))}")
        if "wake" in scenarios:
            wake_scenario(d, name, pulse, tmp, spk)
    finally:
        d.stop()


def wake_scenario(d: Daemon, name: str, pulse: Pulse, tmp: Path, spk: Recorder) -> None:
    if "wake" in VARIANTS[name]:
        r = rtwake.wake_words(d, pulse, tmp, spk, wait_quiet)
        print(f"  wake word: detected {r['detected']} of {r['n']} (flite, 4 voices x 3 speeds, the question "
              f"right after it); a turn followed {r['turns']} of them")
    r = rtwake.room_without_the_word(d, pulse, tmp, rtwake.negatives())
    print(f"  {r['seconds']:.0f} s of speech without the wake word: wake events {r['false_accepts']} "
          f"(~{r['false_accepts'] * 3600 / r['seconds']:.0f}/h), turns {r['turns']}, upstream {r['bytes_up']} bytes")


if __name__ == "__main__":
    main()
