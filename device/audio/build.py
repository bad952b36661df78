"""The echo canceller, the wake word detector and the turn taker the config asks for, with
errors that name the fix (a missing library is a config problem a person can act on, not a
traceback)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ..errors import ConfigError
from ..wakeconfig import WakeConfig
from . import aec
from .talkover import TalkOver
from .turns import EchoGuard, TurnMode, TurnTaker
from .wake import WakeWordDetector, WakeWordUnavailable
from .wakegate import WakeGate, WakeSettings

if TYPE_CHECKING:
    from ..config import Config

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


def turn_taker(config: Config, *, cancelled: bool) -> TurnTaker:
    """Who takes a turn and when, as the daemon does (``pivoice mic-test`` too): the turn mode
    (GPT-Live: always continuous), the wake word's gate, and with an echo canceller
    (``cancelled``) talk-over detection in place of the echo guard."""
    gate = WakeGate(WakeSettings(follow_up_s=config.wake.follow_up)) if config.wake.enabled else None
    mode = TurnMode.CONTINUOUS if config.realtime.api == "live" else TurnMode(config.turns.mode)
    return TurnTaker(mode, config.turns.vad, server_silence_ms=config.turns.silence_ms,
                     echo_guard=EchoGuard.OFF if cancelled else config.audio.echo_guard,
                     hold_s=config.gpio.timing.hold_s, gate=gate, talk_over=TalkOver() if cancelled else None)
