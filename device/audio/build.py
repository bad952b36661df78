"""The echo canceller and the wake word detector the config asks for, with errors that name
the fix (a missing library is a config problem a person can act on, not a traceback)."""

from __future__ import annotations

import logging

from ..errors import ConfigError
from ..wakeconfig import WakeConfig
from . import aec
from .wake import WakeWordDetector, WakeWordUnavailable

logger = logging.getLogger(__name__)


def echo_canceller(kind: str, rate: int = 16000) -> aec.EchoCanceller | None:
    """``[audio] echo_cancel``: "auto" is webrtc where livekit imports, else off (the echo guard)."""
    if kind == "auto":
        try:
            return aec.create("webrtc", rate)
        except aec.AecUnavailable as exc:
            logger.warning("no echo canceller: %s; the echo guard is used", exc)
            return None
    try:
        return aec.create(kind, rate)
    except aec.AecUnavailable as exc:
        raise ConfigError(f"[audio] echo_cancel = {kind!r}: {exc}",
                          fix="install it, or set [audio] echo_cancel = \"auto\" or \"off\"") from None


def wake_detector(wake: WakeConfig) -> WakeWordDetector | None:
    if not wake.enabled:
        return None
    try:
        return WakeWordDetector(wake.detector_model, threshold=wake.threshold or None)
    except (WakeWordUnavailable, ValueError) as exc:
        raise ConfigError(f"[wake]: {exc}", fix="fix [wake] word / model, or set word = \"\" to turn it off") from None


def stop_detector(wake: WakeConfig) -> WakeWordDetector | None:
    """``[wake] stop``: its own model, at its own threshold (default: that model's cutoff)."""
    if not wake.stop:
        return None
    try:
        return WakeWordDetector(wake.stop, threshold=wake.stop_threshold or None, key="[wake] stop")
    except (WakeWordUnavailable, ValueError) as exc:
        raise ConfigError(str(exc), fix="fix [wake] stop, or set stop = \"\" to turn it off") from None
