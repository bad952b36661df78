"""What the conversation core keeps of a reply and counts; the reply summary on the bus."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .models import Item, Response


@dataclass
class Counters:
    turns: int = 0
    replies: int = 0
    appends: int = 0
    bytes_up: int = 0
    bytes_down: int = 0
    commits: int = 0
    forced_commits: int = 0
    barge_ins: int = 0
    truncates: int = 0
    cancels: int = 0
    text_only_fallbacks: int = 0
    reply_timeouts: int = 0
    tool_calls: int = 0


@dataclass
class Reply:
    """The response being answered, from ``response.created`` to finished."""

    id: str
    started_at: float
    last_news: float
    audio: bool = False
    server_done: bool = False


def reply_summary(response: Response, messages: list[Item], calls: list[Item], had_audio: bool) -> dict[str, Any]:
    answers = [i for i in messages if i.phase != "commentary"]
    return {"response_id": response.id, "status": response.status, "audio": had_audio,
            "text": " ".join(i.text for i in answers)[:300], "tools": [c.name for c in calls],
            "preamble": " ".join(i.text for i in messages if i.phase == "commentary")[:300] or None,
            "phases": [i.phase for i in messages]}


def truncation_point(played_ms: dict[str, int], received_ms: dict[str, int]) -> tuple[str, int] | None:
    """Where to truncate after playback stopped: the item playing then is the last one the
    speaker got (``played_ms`` is in play order); one it had played to the end (a finished
    preamble) needs no truncation, and one it never reached is not named at all. Clamped to
    what was received (field notes item 12), by construction: played <= received."""
    heard = [(item, ms) for item, ms in played_ms.items() if ms > 0 and item in received_ms]
    if heard and heard[-1][1] < received_ms[heard[-1][0]]:
        return heard[-1]
    return None
