"""``playback_started`` from the real speaker's writer thread (PyAudio, PortAudio, ALSA's file
plugin): the first sample of each item is announced once, through the loop bridge."""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np

from device.audio.playback import PlaybackBuffer
from hardware.audio import Speaker
from hardware.bridge import LoopBridge


async def test_each_items_first_sample_reaches_the_loop_once_from_the_writer_thread():
    bridge = LoopBridge()
    loop_thread = threading.get_ident()
    seen: list[tuple[str, float, str, bool]] = []
    arrived = asyncio.Event()

    def on_loop(item: str, at: float, thread: str) -> None:
        seen.append((item, at, thread, threading.get_ident() == loop_thread))
        arrived.set()

    speaker = Speaker("fakespk", lambda n: b"")
    speaker.open()
    try:
        playback = PlaybackBuffer(speaker.rate, prebuffer_ms=40)
        playback.on_first_sample = lambda item, at: bridge.post(on_loop, item, at, threading.current_thread().name)
        speaker.read = playback.read
        tone = (np.sin(np.arange(speaker.rate // 4) / 8) * 8000).astype("<i2").tobytes()   # 250 ms
        pushed_at = time.monotonic()
        for item in ("item_a", "item_b"):
            playback.push(item, tone)
        playback.finish()
        await asyncio.wait_for(_until(lambda: len(seen) == 2 and not playback.active, arrived), 30)
    finally:
        speaker.close()
    assert [s[0] for s in seen] == ["item_a", "item_b"]
    assert all(thread == "speaker" and on_loop_thread for _, _, thread, on_loop_thread in seen)
    assert pushed_at <= seen[0][1] <= seen[1][1]      # the writer's own clock, in order


async def _until(predicate, changed: asyncio.Event) -> None:
    while not predicate():
        changed.clear()
        try:
            await asyncio.wait_for(changed.wait(), 0.05)
        except asyncio.TimeoutError:
            pass
