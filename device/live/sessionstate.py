"""What the GPT-Live parts are tuned by and keep count of (the conversation core's settings and
counters, the session manager's options and stats), and the manager's status dict.

The status has the keys of the Realtime manager's (``pivoice status``, the metrics and the
systemd status line read them alike) plus ``api``, ``idle_close_in_s``, ``idle_closes`` and
``billed_s`` (connected seconds as the server counts them: ``session.usage.updated`` and
``session.closed``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .models import FunctionTool


@dataclass
class Counters:
    turns: int = 0
    replies: int = 0
    appends: int = 0
    bytes_up: int = 0
    bytes_down: int = 0
    barge_ins: int = 0
    tool_calls: int = 0
    delegations: int = 0
    idle_closes: int = 0
    muted_frames: int = 0


@dataclass
class LiveSettings:
    """What ``session.start`` carries (immutable for the session's life)."""

    model: str = "gpt-live-1"
    instructions: str | None = None
    voice: str | None = None
    tools: tuple[FunctionTool, ...] = ()
    delegation_model: str = "gpt-5-mini"


@dataclass
class LiveOptions:
    fatal_retry_s: float = 600.0
    backoff_base_s: float = 0.5
    backoff_cap_s: float = 30.0
    open_timeout_s: float = 10.0
    close_timeout_s: float = 5.0
    ping_interval_s: float | None = 10.0
    ping_timeout_s: float | None = 10.0
    healthy_s: float = 5.0
    tick_s: float = 0.1


@dataclass
class LiveStats:
    connects: int = 0
    reconnects: int = 0
    expired: int = 0
    idle_closes: int = 0
    rotations: int = 0      # Live has none: kept for the status and the metrics
    session_id: str | None = None
    session_started: float | None = None    # monotonic
    deadline: float | None = None           # monotonic, from expires_at
    link: str = "standby"                    # standby | connecting | up | backoff | error
    next_retry_at: float | None = None
    last_error: str | None = None
    last_error_at: float | None = None
    usage_s: float = 0.0                     # billed seconds of the sessions that ended
    session_usage_s: float = 0.0             # of the one open now
    history: list[str] = field(default_factory=list)


def status_of(s: LiveStats, *, now: float, idle_close_at: float | None, bad_frames: int,
              counters: dict[str, int]) -> dict[str, Any]:
    up = s.link == "up"
    return {
        "api": "live", "link": s.link, "session_id": s.session_id if up else None,
        "session_age_s": round(now - s.session_started, 1) if s.session_started and up else None,
        "rotation_in_s": None,
        "deadline_in_s": round(s.deadline - now, 1) if s.deadline and up else None,
        "idle_close_in_s": round(max(0.0, idle_close_at - now), 1) if idle_close_at is not None and up else None,
        "next_retry_in_s": round(s.next_retry_at - now, 1) if s.next_retry_at else None,
        "connects": s.connects, "reconnects": s.reconnects, "rotations": 0, "expired": s.expired,
        "idle_closes": s.idle_closes, "clock_distrusted": 0, "billed_s": round(s.usage_s + s.session_usage_s, 1),
        "bad_frames": bad_frames, "last_error": s.last_error, "last_error_at": s.last_error_at, **counters,
    }
