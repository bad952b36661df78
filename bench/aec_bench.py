"""Echo cancellers compared on the same recordings: WebRTC AEC3 (livekit) vs speexdsp vs none.

    PYTHONPATH=. .venv/bin/python bench/aec_bench.py

The scene, at 16 kHz: the device says a flite sentence (the reference); its echo reaches the
microphone DELAY ms later through a small room (direct path + two reflections) at GAIN dB; a
person (pocketsphinx's real human clips) talks once over the reply (double talk) and once after
it. Printed per canceller and echo level:
  ERLE        echo power in / out where only the echo is present (dB; higher is better)
  echo VAD    share of echo-only 20 ms frames webrtcvad still calls speech (lower is better)
  near kept   share of the person's speech frames webrtcvad still finds, during double talk
              and alone (higher is better); near loss = level drop of the person alone (dB)
  CPU         % of one core of this machine for the canceller alone (webrtc-api: the same AEC3
              through livekit's Python API instead of pivoice's direct calls, apmffi.py)
Not a test: it prints, it does not assert (tests/audio/test_aec.py asserts the behaviour).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import webrtcvad

from device.audio import aec, apmffi

RATE = 16000
N = RATE // 100
CLIPS = Path("/usr/share/pocketsphinx/test/data")
REPLY = ("Sure. The weather tomorrow looks bright and mild, with a light breeze from the west "
         "and a small chance of rain in the late afternoon, so take a jacket just in case.")


def flite(text: str, voice: str = "slt") -> np.ndarray:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "x.wav"
        subprocess.run(["flite", "-voice", voice, "-t", text, "-o", str(out)], check=True)
        with wave.open(str(out)) as w:
            assert w.getframerate() == RATE
            return np.frombuffer(w.readframes(w.getnframes()), "<i2").copy()


def clip(name: str) -> np.ndarray:
    return np.frombuffer((CLIPS / name).read_bytes(), "<i2").copy()


def room(x: np.ndarray, delay_ms: int, gain_db: float) -> np.ndarray:
    """Direct path + two reflections, then a gentle low-pass (a small speaker's roll-off)."""
    y = np.zeros(len(x) + RATE, np.float32)
    for extra_ms, rel in ((0, 1.0), (7, 0.35), (23, 0.15)):
        d = (delay_ms + extra_ms) * RATE // 1000
        y[d:d + len(x)] += rel * x
    y = np.convolve(y, [0.25, 0.5, 0.25], "same")
    return y * 10 ** (gain_db / 20)


def scene(delay_ms: int, gain_db: float):
    far = flite(REPLY)
    near1, near2 = clip("goforward.raw"), clip("numbers.raw")[: 3 * RATE]
    total = len(far) + len(near2) + 2 * RATE
    far_full = np.zeros(total, np.float32)
    far_full[RATE // 2:RATE // 2 + len(far)] = far
    echo = room(far_full, delay_ms, gain_db)[:total]
    near = np.zeros(total, np.float32)
    t1 = RATE // 2 + len(far) // 2                     # the person talks over the reply
    near[t1:t1 + len(near1)] = near1 * 0.5             # at the level a person reaches the mic
    t2 = RATE // 2 + len(far) + RATE                   # and again once it has ended
    near[t2:t2 + len(near2)] = near2 * 0.5
    rng = np.random.default_rng(1)
    mic = echo + near + rng.normal(0, 20, total)
    as16 = lambda a: np.clip(a, -32768, 32767).astype(np.int16)
    return as16(far_full), as16(mic), echo, near


def run(canceller, far: np.ndarray, mic: np.ndarray) -> tuple[np.ndarray, float]:
    out = np.zeros_like(mic)
    cpu = time.process_time()
    for i in range(len(mic) // N):
        s = slice(i * N, (i + 1) * N)
        if canceller is None:
            out[s] = mic[s]
            continue
        canceller.reference(far[s], at=i * 0.01)
        out[s] = canceller.process(mic[s], at=(i + 1) * 0.01)
    seconds = len(mic) / RATE
    return out, 100 * (time.process_time() - cpu) / seconds


def frames_where(signal: np.ndarray, threshold: float) -> np.ndarray:
    x = signal[: len(signal) // 320 * 320].reshape(-1, 320).astype(np.float32)
    return np.sqrt((x ** 2).mean(axis=1)) > threshold


def vad_share(x: np.ndarray, mask: np.ndarray) -> float:
    vad = webrtcvad.Vad(2)
    hits = [vad.is_speech(x[i * 320:(i + 1) * 320].tobytes(), RATE) for i in range(len(mask))]
    hits = np.array(hits)
    return float(hits[mask].mean()) if mask.any() else float("nan")


def measure(out: np.ndarray, mic: np.ndarray, echo: np.ndarray, near: np.ndarray, skip_s: float = 1.5):
    settled = np.arange(len(frames_where(near, 0))) >= skip_s * 50   # let the canceller converge
    echo_only = frames_where(echo, 300) & ~frames_where(near, 30) & settled
    e_in = mic[: len(echo_only) * 320].reshape(-1, 320).astype(np.float64)
    e_out = out[: len(echo_only) * 320].reshape(-1, 320).astype(np.float64)
    erle = 10 * np.log10((e_in[echo_only] ** 2).sum() / max((e_out[echo_only] ** 2).sum(), 1.0))
    talk = frames_where(near, 300)
    double = talk & frames_where(echo, 300)
    alone = talk & ~frames_where(echo, 30)
    loss = 10 * np.log10((e_in[alone] ** 2).sum() / max((e_out[alone] ** 2).sum(), 1.0))
    return {"erle": erle, "echo_vad": vad_share(out, echo_only), "echo_vad_in": vad_share(mic, echo_only),
            "near_double": vad_share(out, double), "near_alone": vad_share(out, alone), "near_loss": loss}


def main() -> None:
    print(f"{'canceller':10} {'echo':>10} {'ERLE dB':>8} {'echo VAD':>9} {'near kept dbl/alone':>20} "
          f"{'near loss':>9} {'CPU %':>6}")
    for delay_ms, gain_db in ((40, -18), (40, -6), (25, 0), (150, -6)):
        far, mic, echo, near = scene(delay_ms, gain_db)
        for name in ("none", "webrtc", "webrtc-api", "speex"):
            canceller = None if name == "none" else aec.create(name.removesuffix("-api"), RATE)
            if name == "webrtc-api":     # the same AEC3 through livekit's Python API (apmffi.py)
                canceller._apm = apmffi.open_apm(RATE, direct=False)
            out, cpu = run(canceller, far, mic)
            m = measure(out, mic, echo, near)
            print(f"{name:10} {gain_db:>+4d}dB/{delay_ms:3d}ms {m['erle']:8.1f} {m['echo_vad']:9.0%} "
                  f"{m['near_double']:>10.0%}/{m['near_alone']:<9.0%} {m['near_loss']:9.1f} {cpu:6.2f}")


if __name__ == "__main__":
    main()
