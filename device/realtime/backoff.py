"""Reconnect delays: exponential backoff with full jitter, as a plain generator.

Full jitter (a uniform draw between 0 and the exponential ceiling) spreads the retries of many
devices after an outage instead of letting them hammer in step (field notes item 4). The
randomness comes in as an argument so tests get exact numbers without sleeping.
"""

from __future__ import annotations

import random
from collections.abc import Iterator


def backoff(*, base_s: float = 0.5, cap_s: float = 30.0, factor: float = 2.0,
            rng: random.Random | None = None) -> Iterator[float]:
    """Yield delays in seconds: uniform(0, min(cap, base * factor**attempt)), forever."""
    if base_s <= 0 or cap_s < base_s or factor < 1:
        raise ValueError("backoff needs 0 < base_s <= cap_s and factor >= 1")
    draw = (rng or random.Random()).uniform
    ceiling = base_s
    while True:
        yield draw(0.0, ceiling)
        ceiling = min(cap_s, ceiling * factor)
