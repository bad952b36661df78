"""The speaker's notices through the real writer thread (PyAudio, PortAudio, ALSA's file
plugin): the first sample of each item and the end of the reply reach the loop once each,
through the one bridge; nothing polls for them."""

from __future__ import annotations

import asyncio
import threading

import numpy as np

from device.audio.pipeline import AudioPipeline
from device.audio.turns import TurnMode, TurnTaker
from hardware.audio import Speaker
from hardware.bridge import LoopBridge


class Listener:
    def __init__(self) -> None:
        self.loop_thread = threading.get_ident()
        self.seen: list[tuple[str, str | None, bool]] = []
        self.changed = asyncio.Event()

    def _note(self, kind: str, item: str | None) -> None:
        self.seen.append((kind, item, threading.get_ident() == self.loop_thread))
        self.changed.set()

    def playback_started(self, item_id: str) -> None:
        self._note("started", item_id)

    def playback_drained(self) -> None:
        self._note("drained", None)

    def turn(self, actions) -> None:
        pass

    def barged_in(self, cause, played_ms) -> None:
        self._note("barged_in", cause)


async def test_each_item_starts_once_and_the_reply_drains_once_on_the_loop():
    listener = Listener()
    pipeline = AudioPipeline(TurnTaker(TurnMode.SERVER_VAD), prebuffer_ms=40, post=LoopBridge().post)
    pipeline.listener = listener
    speaker = Speaker("fakespk", pipeline.read)
    speaker.open()
    try:
        pipeline.speaker_opened(speaker.rate)
        tone = (np.sin(np.arange(24000 // 4) / 8) * 8000).astype("<i2").tobytes()   # 250 ms at 24 kHz
        for item in ("item_a", "item_b"):
            pipeline.play(item, tone)
        pipeline.finish()
        async with asyncio.timeout(30):
            while not any(kind == "drained" for kind, _, _ in listener.seen):
                listener.changed.clear()
                await listener.changed.wait()
    finally:
        speaker.close()
    assert [(kind, item) for kind, item, _ in listener.seen] == [
        ("started", "item_a"), ("started", "item_b"), ("drained", None)]
    assert all(on_loop for _, _, on_loop in listener.seen)     # delivered on the loop's thread
    assert not pipeline.speaking
    # resampled once, to the speaker's rate: all of both items reached it
    assert pipeline.playback.stats.played_bytes == 2 * len(tone) * speaker.rate // 24000
