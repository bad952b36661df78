"""The audio pipeline: it only does audio. Frames in, turn decisions out; reply audio in,
samples to the speaker out. It knows nothing of protocols or sessions.

    microphone (its own rate) -> FrontEnd (mono; 24 kHz + 16 kHz frames) -> webrtcvad
        -> TurnTaker (the gate, the turn mode, the echo guard) -> listener.turn(actions)
    play(item, 24 kHz pcm) -> gain -> resample once, to the speaker's rate -> PlaybackBuffer
        -> speaker.read (its own thread) -> listener.playback_started / playback_drained

The microphone's rate is set when it opens (:meth:`mic_opened`), the speaker's likewise
(:meth:`speaker_opened`). With no speaker, reply audio is dropped (counted) and a finished
reply "drains" at once, so the device never waits for a sound card it does not have.

Barge-in on the device's own detection: when the turn taker hears the person over the reply,
playback is flushed here, at once, and the listener is told what was played of each item
(``barged_in``) before it gets the turn's audio.

Notices from the speaker's thread cross into the loop through ``post`` (the one bridge,
:class:`hardware.bridge.LoopBridge`); nothing is polled.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from .frontend import FrontEnd
from .playback import PlaybackBuffer
from .resample import StreamResampler
from .turns import Actions, TurnTaker
from .vad import WebRtcVad

logger = logging.getLogger(__name__)
API_RATE = 24000


class AudioListener(Protocol):
    """Who hears what the pipeline decided (the session manager)."""

    def turn(self, actions: Actions) -> None: ...
    def barged_in(self, cause: str, played_ms: dict[str, int]) -> None: ...
    def playback_started(self, item_id: str) -> None: ...
    def playback_drained(self) -> None: ...


@dataclass
class AudioCounters:
    mic_frames: int = 0
    overflows: int = 0
    speech_frames: int = 0
    local_barge_ins: int = 0
    bytes_played: int = 0
    bytes_dropped_no_speaker: int = 0


class AudioPipeline:
    def __init__(self, turns: TurnTaker, *, prebuffer_ms: int = 80, max_playback_ms: int = 120_000,
                 vad: WebRtcVad | None = None, post: Callable[..., None] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.turns = turns
        self.vad = vad or WebRtcVad(turns.segmenter.settings.aggressiveness)
        self.prebuffer_ms = prebuffer_ms
        self.max_playback_ms = max_playback_ms
        #: how a notice from the speaker's thread reaches the loop (LoopBridge.post)
        self.post: Callable[..., None] = post or (lambda fn, *args: fn(*args))
        self.clock = clock
        self.listener: AudioListener | None = None
        self.counters = AudioCounters()
        self.frontend: FrontEnd | None = None
        self.playback: PlaybackBuffer | None = None
        self._down: StreamResampler | None = None
        self._last_item: str | None = None
        self.gain = 1.0  # output volume as a linear factor (set_volume)
        self.last_frame_at = 0.0  # monotonic: when the microphone last delivered (the watchdog)
        self.last_barge_in: dict[str, Any] | None = None

    # ---------------------------------------------------------------- devices
    def mic_opened(self, rate: int, channels: int) -> None:
        self.frontend = FrontEnd(rate, channels, frame_ms=self.turns.frame_ms)

    def speaker_opened(self, rate: int) -> None:
        """The speaker is open at ``rate``: reply audio is resampled once, to that rate."""
        if self.playback is not None and self.playback.rate == rate:
            return
        self.flush()
        self.playback = PlaybackBuffer(rate, prebuffer_ms=self.prebuffer_ms, max_ms=self.max_playback_ms,
                                       notice=self._notice_from_reader)
        self._down = None if rate == API_RATE else StreamResampler(API_RATE, rate)

    def speaker_closed(self) -> None:
        """No speaker (missing, unplugged): drop what was queued; replies drain at once."""
        if self.playback is not None and self.playback.active:
            self.playback.flush()
            self._post_drained()
        self.playback = None
        self._down = None

    def read(self, nbytes: int) -> bytes:
        """What the speaker plays next (its thread): mono PCM16 at its rate."""
        playback = self.playback
        return playback.read(nbytes) if playback is not None else b""

    def set_volume(self, percent: int) -> None:
        """0..100; squared, so equal steps sound roughly equal."""
        self.gain = (max(0, min(100, percent)) / 100) ** 2

    # ------------------------------------------------------------------ uplink
    def on_mic(self, pcm: bytes, overflowed: bool = False) -> None:
        """One capture period, on the loop (via the bridge)."""
        self.last_frame_at = self.clock()
        if overflowed:
            self.counters.overflows += 1
        if self.frontend is None:
            return
        playback = self.playback
        for pcm24, pcm16 in self.frontend.feed(pcm):
            self.counters.mic_frames += 1
            speech = self.vad.is_speech(pcm16)
            self.counters.speech_frames += speech
            playing = playback is not None and playback.active
            actions = self.turns.frame(pcm24, speech, playing=playing,
                                       reference_db=playback.reference_db() if playing and playback else -90.0)
            if actions:
                if actions.barge_in:
                    self.interrupt("voice")
                if self.listener is not None:
                    self.listener.turn(actions)

    @property
    def speaking(self) -> bool:
        """Reply audio is queued or playing."""
        return self.playback is not None and self.playback.active

    # ---------------------------------------------------------------- downlink
    def play(self, item_id: str, pcm24: bytes) -> None:
        """Queue reply audio (24 kHz mono PCM16) of ``item_id``."""
        if self.playback is None:
            self.counters.bytes_dropped_no_speaker += len(pcm24)
            return
        samples = np.frombuffer(pcm24, "<i2")
        if self.gain != 1.0:
            samples = (samples.astype(np.float32) * self.gain).astype("<i2")
        if self._down is not None:
            samples = self._down.process(samples)
        self.counters.bytes_played += len(pcm24)
        self._last_item = item_id
        self.playback.push(item_id, samples.tobytes())

    def finish(self) -> None:
        """No more audio for now: play out what is queued (with no speaker: drained now)."""
        if self.playback is None:
            self._post_drained()
            return
        if self._down is not None and self._last_item is not None:
            # the resampler holds the last few milliseconds back: they belong to this reply
            self.playback.push(self._last_item, self._down.flush().tobytes())
        self.playback.finish()

    def flush(self) -> dict[str, int]:
        """Stop playing now; the milliseconds the speaker got of each item, in play order."""
        if self.playback is None:
            return {}
        if self._down is not None:
            self._down.reset()   # the cut-off reply's tail must not start the next one
        return self.playback.flush()

    def interrupt(self, cause: str) -> dict[str, int]:
        """Stop the reply now (the person talked over it, the button, a new conversation)."""
        played = self.flush()
        if cause == "voice":
            self.counters.local_barge_ins += 1
        self.last_barge_in = {"cause": cause, "played_ms": played, "flushed_at": self.clock()}
        if self.listener is not None:
            self.listener.barged_in(cause, played)
        return played

    # -------------------------------------------------- notices from the reader
    def _notice_from_reader(self, kind: str, item_id: str | None) -> None:
        self.post(self._deliver_notice, kind, item_id)

    def _post_drained(self) -> None:
        self.post(self._deliver_notice, "drained", None)

    def _deliver_notice(self, kind: str, item_id: str | None) -> None:
        """On the loop. A drain is stale if new audio arrived since the reader saw the end."""
        if self.listener is None:
            return
        if kind == "started" and item_id is not None:
            self.listener.playback_started(item_id)
        elif kind == "drained" and not self.speaking:
            self.listener.playback_drained()
