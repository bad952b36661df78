"""What permessage-deflate costs on the audio the device streams up, per compression level.

Real speech (pocketsphinx's test clips, at the session's 24 kHz), cut into the capture periods
the device sends, serialised by the device's own protocol core as ``input_audio_buffer.append``
frames and compressed by websockets' own PerMessageDeflate extension, as on a live link:
level 6 (websockets' default, the naive baseline) against level 1 (``device/wsdeflate.py``).
Measures only this step of the path (CPU time in this process, no socket), on this machine.

    .venv/bin/python bench/deflate_bench.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import soxr
from websockets.extensions.permessage_deflate import PerMessageDeflate
from websockets.frames import Frame, Opcode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from device import wsdeflate  # noqa: E402
from device.realtime.client_events import InputAudioAppend  # noqa: E402
from device.realtime.protocol import RealtimeProtocol  # noqa: E402

CLIPS = Path("/usr/share/pocketsphinx/test/data")


def frames(period_ms: int) -> list[bytes]:
    clips = [np.frombuffer((CLIPS / n).read_bytes(), "<i2") for n in ("goforward.raw", "numbers.raw", "something.raw")]
    speech = soxr.resample(np.concatenate(clips).astype(np.float32), 16000, 24000).astype(np.int16)
    step = 24 * period_ms
    proto = RealtimeProtocol()
    out = []
    for i in range(0, len(speech) - step, step):
        text = proto.send(InputAudioAppend.from_pcm(speech[i:i + step].tobytes()))
        assert text is not None
        out.append(text.encode())
    return out


def run(messages: list[bytes], level: int, rounds: int = 5) -> tuple[float, float]:
    """(microseconds of CPU per message, compressed / original bytes), best of ``rounds``."""
    best = float("inf")
    ratio = 0.0
    for _ in range(rounds):
        ext = PerMessageDeflate(False, False, 15, 15, {"level": level, "memLevel": wsdeflate.MEM_LEVEL})
        sent = 0
        start = time.process_time()
        for data in messages:
            sent += len(ext.encode(Frame(Opcode.TEXT, data)).data)
        best = min(best, (time.process_time() - start) / len(messages) * 1e6)
        ratio = sent / sum(len(m) for m in messages)
    return best, ratio


def main() -> None:
    if not CLIPS.exists():
        raise SystemExit(f"{CLIPS} is missing: apt-get install pocketsphinx-testdata (install.sh --dev)")
    print("permessage-deflate on input_audio_buffer.append frames of real speech (24 kHz, base64 JSON);")
    print("this step alone, CPU time in this process (no socket); x10 for a Pi Zero 2 W")
    for period in (20, 50, 100):
        messages = frames(period)
        per_s = 1000 / period
        rows = {level: run(messages, level) for level in (6, wsdeflate.LEVEL)}
        for level, (us, ratio) in rows.items():
            label = "websockets' default (naive)" if level == 6 else "pivoice"
            print(f"  {period:3d} ms periods, level {level} ({label}): {us:6.0f} us per frame, "
                  f"{us * per_s / 1e4:.3f} % of a core while streaming, size {ratio:.0%} of the JSON")
        (naive, naive_ratio), (ours, ours_ratio) = rows[6], rows[wsdeflate.LEVEL]
        print(f"  {period:3d} ms periods: {naive / ours:.1f}x less CPU for {100 * (ours_ratio - naive_ratio):+.0f} "
              f"points of size")


if __name__ == "__main__":
    main()
