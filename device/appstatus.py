"""Pieces of ``pivoice status`` that read one part of the app: the echo canceller, the
control socket, a sound device (device/app.py puts them together)."""

from __future__ import annotations

from typing import Any


def aec_status(pipeline: Any) -> dict[str, Any] | None:
    """The canceller's work so far: frames cleaned or skipped, energy in and out (bench)."""
    front, canceller = pipeline.frontend, pipeline.canceller or getattr(pipeline, "failed_canceller", None)
    if canceller is None:
        return None
    return {"kind": getattr(canceller, "name", "?"), "frames": front.cancelled_frames if front else 0,
            "skipped": front.bypassed_frames if front else 0,
            "energy_in": front.echo_in if front else 0.0, "energy_out": front.echo_out if front else 0.0,
            "failed": getattr(canceller, "failed", None),
            # the microphone is missing: the silence standing in for it is not cancelled
            "standing_in": pipeline.standing_in}


def control_counters(control: Any) -> dict[str, int]:
    """Requests the control socket refused, evicted, timed out or could not read."""
    stats = control.stats if control is not None else None
    return {"control_refused": stats.refused_busy if stats else 0, "control_evicted": stats.evicted if stats else 0,
            "control_timed_out": stats.timed_out if stats else 0,
            "control_bad_requests": stats.bad_requests if stats else 0}


def device_line(part: str, device: Any, problems: dict[str, str]) -> str:
    """``microphone``/``speaker`` in the status: what is open, at what rate, or what is wrong."""
    if part in problems:
        return f"missing: {problems[part]}"
    if device is None or not getattr(device, "rate", 0):
        return "not open yet"
    period = f", {device.period_ms} ms periods" if part == "microphone" and hasattr(device, "period_ms") else ""
    if getattr(device, "unclocked", False):   # hardware/pacing.py
        period += "; no clock (faster than real time: not a sound card?), read at real time"
    return f"{getattr(device, 'device_name', part)} at {device.rate} Hz{period}"
