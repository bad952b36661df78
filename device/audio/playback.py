"""The playback buffer between the downlink (event loop) and the speaker's writer thread.

Theory of operation. Reply audio arrives faster than real time (reference section 5) and in
uneven bursts. The loop pushes device-rate PCM per assistant item; the writer thread reads a
period at a time. States:

    IDLE --push--> BUFFERING --queued >= prebuffer, or end of reply--> PLAYING
    PLAYING --queue runs dry, reply not finished--> BUFFERING (an underrun, counted)
    PLAYING --queue runs dry, reply finished--> IDLE
    BUFFERING, PLAYING --hold(unheard)--> HELD --resume()--> BUFFERING (PLAYING at once if enough)
    any --flush()--> IDLE

HELD is a talk-over not yet confirmed (bargehold.py): the speaker gets nothing (it plays
silence), and what its buffer held, dropped unheard, goes back to the head of the queue (the
last ``RECENT_MS`` handed out are kept for that). How much that is comes from the speaker's
``lead_s``: what its buffer holds at that moment, the period written last included.

For every item it counts the samples actually handed to the writer (so to ALSA): that, not
wall-clock time, is what ``conversation.item.truncate`` needs (field notes item 12). The
counts start afresh after each drain, so they never grow. One lock guards the state; the
writer holds it for a copy of one period, never across I/O.

The reader tells the device two things through ``notice(kind, item_id)``, called on the
reader's thread outside the lock (the owner posts it to the event loop): ``"started"`` when
the first sample of an item is handed out, ``"drained"`` when the last queued sample of a
finished reply is. The queue is bounded (``max_ms``): a flood drops the oldest audio, counted.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from .vad import level_db

BYTES_PER_SAMPLE = 2
#: how much of what was handed out is kept, to be queued again after a hold (more than any
#: speaker's buffer: PulseAudio's ~93 ms at 40 ms periods)
RECENT_MS = 500


@dataclass
class PlaybackStats:
    underruns: int = 0
    flushes: int = 0
    played_bytes: int = 0
    dropped_ms: int = 0


class PlaybackBuffer:
    def __init__(self, rate: int, *, prebuffer_ms: int = 80, max_ms: int = 120_000,
                 notice: Callable[[str, str | None], None] | None = None) -> None:
        self.rate = rate
        self.prebuffer_bytes = rate * prebuffer_ms // 1000 * BYTES_PER_SAMPLE
        self.max_bytes = max(self.prebuffer_bytes, rate * max_ms // 1000 * BYTES_PER_SAMPLE)
        self.notice = notice
        self._lock = threading.Lock()
        self._chunks: deque[tuple[str, bytes]] = deque()
        self._queued = 0
        self._state = "idle"
        self._finished = False
        self._played: dict[str, int] = {}
        self._recent: deque[tuple[str, bytes]] = deque()   # the latest pieces handed out
        self._recent_bytes = 0
        self._recent_max = rate * RECENT_MS // 1000 * BYTES_PER_SAMPLE
        self.current_item: str | None = None
        self.stats = PlaybackStats()
        #: dB of the last 20 ms slices handed out (200 ms), whatever size the speaker reads
        self._levels: deque[float] = deque(maxlen=10)

    def reference_db(self) -> float:
        """How loud what we played lately was (max over the last 200 ms): the echo reference."""
        with self._lock:
            return max(self._levels, default=-90.0)

    @property
    def state(self) -> str:
        return self._state

    @property
    def active(self) -> bool:
        """Something is queued or playing: the device is speaking."""
        return self._state != "idle"

    def queued_ms(self) -> float:
        return self._queued / BYTES_PER_SAMPLE / self.rate * 1000

    def push(self, item_id: str, pcm: bytes) -> None:
        if not pcm:
            return
        with self._lock:
            self._chunks.append((item_id, pcm))
            self._queued += len(pcm)
            while self._queued > self.max_bytes and len(self._chunks) > 1:
                _, old = self._chunks.popleft()   # a flood: drop the oldest, never grow
                self._queued -= len(old)
                self.stats.dropped_ms += len(old) * 1000 // (BYTES_PER_SAMPLE * self.rate)
            self._finished = False
            if self._state == "idle":
                self._state = "buffering"
            self._maybe_start()

    def finish(self) -> None:
        """No more audio is coming for this reply: play out what is queued, however little."""
        with self._lock:
            self._finished = True
            self._maybe_start()

    def _maybe_start(self) -> None:
        if self._state == "buffering" and (self._queued >= self.prebuffer_bytes or self._finished):
            self._state = "playing"

    def read(self, nbytes: int) -> bytes:
        """Up to ``nbytes`` to play now (from the writer thread); b"" when there is nothing."""
        started: list[str] = []
        drained = False
        with self._lock:
            if self._state != "playing":
                return b""
            out = bytearray()
            while self._chunks and len(out) < nbytes:
                item_id, pcm = self._chunks[0]
                take = pcm[: nbytes - len(out)]
                out += take
                self._keep_recent(item_id, take)
                if item_id not in self._played:
                    started.append(item_id)
                self._played[item_id] = self._played.get(item_id, 0) + len(take)
                self.current_item = item_id
                if len(take) == len(pcm):
                    self._chunks.popleft()
                else:
                    self._chunks[0] = (item_id, pcm[len(take):])
            self._queued -= len(out)
            self.stats.played_bytes += len(out)
            step = max(1, self.rate // 50) * BYTES_PER_SAMPLE
            view = memoryview(out)
            for i in range(0, max(len(out), 1), step):
                self._levels.append(level_db(view[i:i + step]))
            if not self._chunks:
                if self._finished:
                    self._state = "idle"
                    self._played = {}
                    self._recent.clear()
                    self._recent_bytes = 0
                    self.current_item = None
                    drained = True
                else:
                    self._state = "buffering"
                    self.stats.underruns += 1
        if self.notice is not None:
            for item_id in started:
                self.notice("started", item_id)
            if drained:
                self.notice("drained", None)
        return bytes(out)

    def _keep_recent(self, item_id: str, pcm: bytes) -> None:
        self._recent.append((item_id, pcm))
        self._recent_bytes += len(pcm)
        while self._recent_bytes - len(self._recent[0][1]) >= self._recent_max:
            self._recent_bytes -= len(self._recent.popleft()[1])

    @property
    def held(self) -> bool:
        return self._state == "held"

    def hold(self, unheard_ms: int) -> int:
        """Talk-over, not yet confirmed: hand out nothing until :meth:`resume` (or a flush),
        and queue again the last ``unheard_ms`` handed out (the speaker's buffer, dropped
        unheard): they no longer count as played. Returns the milliseconds queued again."""
        with self._lock:
            if self._state not in ("playing", "buffering"):
                return 0
            want = self.rate * max(0, unheard_ms) // 1000 * BYTES_PER_SAMPLE
            back = 0
            while back < want and self._recent:
                item_id, pcm = self._recent.pop()
                self._recent_bytes -= len(pcm)
                give = pcm[-(want - back):]
                if len(give) < len(pcm):
                    self._recent.append((item_id, pcm[:-len(give)]))
                    self._recent_bytes += len(pcm) - len(give)
                self._chunks.appendleft((item_id, give))
                self._queued += len(give)
                self._played[item_id] = max(0, self._played.get(item_id, 0) - len(give))
                self.stats.played_bytes -= len(give)
                back += len(give)
            self._state = "held"
            return back * 1000 // (BYTES_PER_SAMPLE * self.rate)

    def resume(self) -> None:
        """The talk-over was not a person: play on from where the speaker was cut off."""
        with self._lock:
            if self._state == "held":
                self._state = "buffering"
                self._maybe_start()

    def flush(self) -> dict[str, int]:
        """Barge-in: drop everything queued now; return the milliseconds played of each item
        since playback last began, in the order the speaker got them."""
        with self._lock:
            played = {k: int(v / BYTES_PER_SAMPLE * 1000 // self.rate) for k, v in self._played.items()}
            self._chunks.clear()
            self._queued = 0
            self._recent.clear()
            self._recent_bytes = 0
            self._levels.clear()
            self._state = "idle"
            self._finished = False
            self._played = {}
            self.current_item = None
            self.stats.flushes += 1
            return played


def unheard(played: dict[str, int], ms: int) -> dict[str, int]:
    """``played`` (ms of each item handed to the speaker, in play order) less the last ``ms``
    of it, which the speaker's buffer held when it was dropped."""
    out = dict(played)
    for item in reversed(out):
        take = min(ms, out[item])
        out[item] -= take
        ms -= take
        if not ms:
            break
    return out
