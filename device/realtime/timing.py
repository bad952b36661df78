"""Session timing: what the manager remembers of its sessions, its options, and how long a
session may live by this device's clock."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

#: A limit outside [MIN_PLAUSIBLE_S, max(2 x session_limit, MAX_PLAUSIBLE_S)] says the wall clock
#: is wrong (a Pi without a real-time clock before NTP, or an hour fast), not the server.
MIN_PLAUSIBLE_S = 10.0
MAX_PLAUSIBLE_S = 7200.0


def session_limit(expires_at: float | None, *, wall_now: float, fallback_s: float) -> tuple[float, bool]:
    """(seconds the session may live from now, whether ``expires_at`` was believed). Pure.

    ``expires_at`` is the server's epoch; the device's wall clock may be anything. Taken
    relative to the moment the session was created, and only when that gives a plausible time:
    else ``[realtime] session_limit``, so no clock can make every session look expired."""
    if expires_at is None:
        return fallback_s, True
    remaining = expires_at - wall_now
    if math.isfinite(remaining) and MIN_PLAUSIBLE_S <= remaining <= max(2 * fallback_s, MAX_PLAUSIBLE_S):
        return remaining, True
    return fallback_s, False


@dataclass
class SessionStats:
    connects: int = 0
    reconnects: int = 0
    rotations: int = 0
    expired: int = 0
    session_id: str | None = None
    session_started: float | None = None    # monotonic
    deadline: float | None = None           # monotonic
    link: str = "starting"                   # connecting | up | backoff | error
    next_retry_at: float | None = None
    last_error: str | None = None
    last_error_at: float | None = None      # wall clock
    rotate_at: float | None = None          # monotonic: when the next session is opened
    clock_distrusted: int = 0
    history: list[str] = field(default_factory=list)

    def report(self, now: float) -> dict[str, Any]:
        """For ``pivoice status``: times relative to ``now`` (monotonic)."""
        up = self.link == "up"
        return {
            "link": self.link, "session_id": self.session_id,
            "session_age_s": round(now - self.session_started, 1) if self.session_started and up else None,
            "rotation_in_s": round(max(0.0, self.rotate_at - now), 1) if self.rotate_at and up else None,
            "deadline_in_s": round(self.deadline - now, 1) if self.deadline and up else None,
            "next_retry_in_s": round(self.next_retry_at - now, 1) if self.next_retry_at else None,
            "connects": self.connects, "reconnects": self.reconnects, "rotations": self.rotations,
            "expired": self.expired, "clock_distrusted": self.clock_distrusted,
            "last_error": self.last_error, "last_error_at": self.last_error_at,
        }


@dataclass
class Options:
    session_limit_s: float = 1800.0
    rotate_margin_s: float = 60.0
    carry_turns: int = 6
    fatal_retry_s: float = 600.0
    backoff_base_s: float = 0.5
    backoff_cap_s: float = 30.0
    open_timeout_s: float = 10.0
    ping_interval_s: float | None = 10.0
    ping_timeout_s: float | None = 10.0
    #: a session that lived this long was healthy: the next connection need not wait
    healthy_s: float = 5.0
