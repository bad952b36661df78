"""Who hears what the audio pipeline decided (the session manager), and what it counts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from .turns import Actions


class AudioListener(Protocol):
    """Who hears what the pipeline decided (the session manager)."""

    def turn(self, actions: Actions) -> None: ...
    def barged_in(self, cause: str, played_ms: dict[str, int]) -> None: ...
    def playback_started(self, item_id: str) -> None: ...
    def playback_drained(self) -> None: ...


@dataclass
class AudioCounters:
    mic_frames: int = 0
    stand_in_frames: int = 0      # frames of the silence standing in for a missing microphone
    overflows: int = 0
    speech_frames: int = 0
    local_barge_ins: int = 0
    talk_over_dismissed: int = 0  # held talk-overs that were no barge-in: nobody went on (or muted, mic reopened)
    bytes_played: int = 0
    bytes_dropped_no_speaker: int = 0
    bytes_sent: int = 0           # 24 kHz PCM handed to the listener (what goes up)
    wake_words: int = 0
