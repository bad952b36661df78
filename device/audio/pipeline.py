"""The audio pipeline: microphone -> uplink, downlink -> speaker, and barge-in.

Data flows one way through each half:

    mic (device rate) -> FrontEnd (mono, 24 kHz + 16 kHz frames) -> webrtcvad -> TurnTaker
        -> outbound queue -> connection          (the sender task owns the socket writes)
    connection -> AudioDelta -> resample 24 kHz -> PlaybackBuffer -> Speaker writer thread

Barge-in (reference section 6): on speech onset while the device speaks, playback is flushed
at once; the response is cancelled only if one is active and the server will not cancel it
itself (it does when its own VAD runs with ``interrupt_response``); the assistant item is
truncated at the milliseconds actually handed to the speaker, clamped to what was received.
Everything is synchronous on the event loop except :meth:`run_sender`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import numpy as np

from ..realtime import events as ev
from .frontend import FrontEnd
from .playback import PlaybackBuffer
from .resample import StreamResampler
from .turns import Actions, TurnMode, TurnTaker
from .vad import WebRtcVad

logger = logging.getLogger(__name__)
API_RATE = 24000


@dataclass
class AudioCounters:
    mic_frames: int = 0
    overflows: int = 0
    speech_frames: int = 0
    appends: int = 0
    bytes_up: int = 0
    dropped_up: int = 0
    commits: int = 0
    barge_ins: int = 0
    truncates: int = 0
    cancels: int = 0
    bytes_down: int = 0


class AudioPipeline:
    def __init__(self, turns: TurnTaker, playback: PlaybackBuffer, *, device_rate: int, channels: int,
                 vad: WebRtcVad | None = None, server_interrupts: bool = True, max_queue_ms: int = 2000,
                 on_event: Callable[[str, dict], None] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.turns = turns
        self.playback = playback
        self.frontend = FrontEnd(device_rate, channels, frame_ms=turns.frame_ms)
        self.vad = vad or WebRtcVad(turns.segmenter.settings.aggressiveness)
        self.server_interrupts = server_interrupts and turns.mode is TurnMode.SERVER_VAD
        self.on_event = on_event or (lambda kind, data: None)
        self.clock = clock
        self.counters = AudioCounters()
        self._down = StreamResampler(API_RATE, playback.rate)
        self._out: deque[ev.ClientEvent] = deque()
        self._out_appends = 0  # how many of self._out are audio appends
        self._out_ready = asyncio.Event()
        self._max_frames = max_queue_ms // turns.frame_ms
        self.active_response: str | None = None
        self._ignored_responses: set[str] = set()
        self.received_ms: dict[str, int] = {}
        self.item_response: dict[str, str] = {}  # assistant item -> its response (playback_started)
        self.last_barge_in: dict | None = None
        self.gain = 1.0  # output volume as a linear factor (set_volume)

    def set_volume(self, percent: int) -> None:
        """0..100; squared, so equal steps sound roughly equal."""
        self.gain = (max(0, min(100, percent)) / 100) ** 2

    # ------------------------------------------------------------------------- uplink
    def on_mic(self, pcm: bytes, overflowed: bool = False) -> None:
        """Called on the loop (via the bridge) with each capture period."""
        if overflowed:
            self.counters.overflows += 1
        for pcm24, pcm16 in self.frontend.feed(pcm):
            self.counters.mic_frames += 1
            speech = self.vad.is_speech(pcm16)
            self.counters.speech_frames += speech
            playing = self.playback.active
            self.apply(self.turns.frame(pcm24, speech, playing=playing,
                                        reference_db=self.playback.reference_db() if playing else -90.0))

    def apply(self, actions: Actions) -> None:
        if actions.clear:
            self._queue(ev.InputAudioClear())
        if actions.barge_in:
            self.barge_in("voice")
        for frame in actions.send:
            self._queue(ev.InputAudioAppend.from_pcm(frame))
            self.counters.appends += 1
            self.counters.bytes_up += len(frame)
        if actions.speech_started:
            self.on_event("speech_started", {})
        if actions.commit:
            self._queue(ev.InputAudioCommit())
            self.counters.commits += 1
        if actions.respond:
            self._queue(ev.ResponseCreate())
        if actions.speech_ended:
            self.on_event("speech_ended", {"committed": actions.commit})

    def _queue(self, event: ev.ClientEvent) -> None:
        if isinstance(event, ev.InputAudioAppend):
            if self._out_appends >= self._max_frames:
                # The link is down or slow: keep the newest audio, never grow without bound.
                for i, old in enumerate(self._out):
                    if isinstance(old, ev.InputAudioAppend):
                        del self._out[i]
                        self._out_appends -= 1
                        self.counters.dropped_up += 1
                        break
            self._out_appends += 1
        self._out.append(event)
        self._out_ready.set()

    def send_later(self, event: ev.ClientEvent) -> None:
        """Queue a client event behind the audio already queued (tool outputs, text turns)."""
        self._queue(event)

    def reset_session(self) -> None:
        """A new Realtime session: forget the old one's responses and items."""
        self.active_response = None
        self._ignored_responses.clear()
        self.received_ms.clear()
        self.item_response.clear()

    def drain(self) -> list[ev.ClientEvent]:
        """Take everything queued, in order (for callers that send it themselves)."""
        out = list(self._out)
        self._out.clear()
        self._out_appends = 0
        return out

    async def run_sender(self, send: Callable[[ev.ClientEvent], Awaitable[None]]) -> None:
        """Write queued events to the connection in order, until cancelled or the link fails."""
        while True:
            while not self._out:
                self._out_ready.clear()
                await self._out_ready.wait()
            await send(self._out[0])
            if isinstance(self._out.popleft(), ev.InputAudioAppend):
                self._out_appends -= 1

    # ----------------------------------------------------------------------- downlink
    def on_server_event(self, event: ev.ServerEvent) -> None:
        if isinstance(event, ev.AudioDelta):
            if event.response_id in self._ignored_responses:
                return
            pcm = event.pcm
            self.received_ms[event.item_id] = self.received_ms.get(event.item_id, 0) + len(pcm) // 48
            self.item_response[event.item_id] = event.response_id
            out = self._down.process(np.frombuffer(pcm, "<i2"))
            if self.gain != 1.0:
                out = (out.astype(np.float32) * self.gain).astype("<i2")
            self.counters.bytes_down += len(pcm)
            self.playback.push(event.item_id, out.tobytes())
        elif isinstance(event, ev.ResponseCreated):
            self.active_response = event.response.id
        elif isinstance(event, ev.AudioDone):
            if event.response_id not in self._ignored_responses:
                self.playback.finish()
        elif isinstance(event, ev.ResponseDone):
            if self.active_response == event.response.id:
                self.active_response = None
            self.playback.finish()
        elif isinstance(event, ev.SpeechStarted) and self.playback.active:
            self.barge_in("server_vad")

    # ------------------------------------------------------------------------ barge-in
    def barge_in(self, cause: str) -> None:
        """Stop speaking now; cancel and truncate as the protocol needs (section 6)."""
        started = self.clock()
        item = self.playback.current_item
        was_active = self.playback.active
        played = self.playback.flush()
        self.counters.barge_ins += 1
        response = self.active_response
        # The server cancels on its own only when its VAD hears the person (a voice barge-in).
        if response and (cause not in ("voice", "server_vad") or not self.server_interrupts):
            self._queue(ev.ResponseCancel())
            self.counters.cancels += 1
        if response:
            self._ignored_responses.add(response)
        truncate_ms = None
        if item and was_active and played.get(item, 0) > 0:
            truncate_ms = min(played[item], self.received_ms.get(item, 0))
            self._queue(ev.ItemTruncate(item_id=item, content_index=0, audio_end_ms=truncate_ms))
            self.counters.truncates += 1
        self.last_barge_in = {"cause": cause, "item_id": item, "audio_end_ms": truncate_ms,
                              "flushed_at": self.clock(), "started_at": started}
        logger.info("barge-in (%s): stopped playback, truncate %s at %s ms", cause, item, truncate_ms)
        self.on_event("barge_in", dict(self.last_barge_in))
