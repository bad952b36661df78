"""The hands-free front end in ``pivoice mic-test``: the daemon's own pipeline (echo canceller,
wake word) on the live microphone, so what the meter shows is what the daemon would hear.

With ``--echo`` the speaker plays a spoken phrase meanwhile, so the canceller has something to
remove: each meter line says how much of the device's own voice it took out (dB), and the wake
word's best score in that stretch (a built-in model even when ``[wake]`` is off, to try it).
With ``[wake] stop`` it shows the stop word's best score while the phrase plays, and the
phrase stops when the word is heard, as a reply does in the daemon.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from ..audio import build
from ..audio.pipeline import AudioPipeline
from ..audio.wake import WakeWordDetector
from ..config import Config
from ..errors import PivoiceError
from ..wakeconfig import WakeConfig

logger = logging.getLogger(__name__)
PHRASE = "This is the device talking to itself, to see how much of its own voice comes back."


class HandsFreeProbe:
    def __init__(self, config: Config, *, echo: bool) -> None:
        self.canceller = build.echo_canceller(config.audio.echo_cancel) if echo else None
        self.wake_word = config.wake.detector_model or "hey_jarvis"
        try:
            self.wake = build.wake_detector(config.wake) if config.wake.enabled else \
                build.wake_detector(type(config.wake)(word="hey_jarvis"))
        except Exception as exc:
            logger.info("no wake word in mic-test: %s", exc)
            self.wake = None
        # The stop word runs as in the daemon: only while the device speaks (--echo), where
        # hearing it stops the phrase.
        self.stop_word = config.wake.stop or None
        stop = build.stop_detector(config.wake) if self.stop_word else None
        # Turns as the daemon takes them: with a wake word, talking over the phrase does not stop
        # it (the stop word does); without one, a voice does.
        self.pipeline = AudioPipeline(build.turn_taker(config, cancelled=self.canceller is not None),
                                      canceller=self.canceller, wake=self.wake, stop=stop,
                                      echo_guard=config.audio.echo_guard)
        self.speaker: Any = None
        self._peak = 0.0
        self._stop_peak: float | None = None   # None: the device did not speak in this stretch
        self._stops = 0
        self._energy = (0.0, 0.0)

    def start_echo(self, device: str, seconds: float) -> str | None:
        """Play the phrase on ``device`` for about ``seconds``; None, or why not."""
        if self.canceller is None:
            return "no echo canceller ([audio] echo_cancel, or livekit is not installed)"
        from hardware import audio as hw

        from ..simulator.voice import synthesize

        phrase = synthesize(PHRASE)
        self.speaker = hw.Speaker(device, self.pipeline.read, preferred_rate=48000)
        self.speaker.open()
        self.pipeline.speaker_opened(self.speaker.rate)
        for _ in range(max(1, math.ceil(seconds / (len(phrase) / 48000)))):
            self.pipeline.play("phrase", phrase)
        self.pipeline.finish()
        return None

    def feed(self, pcm: bytes, rate: int, channels: int, gap: int) -> None:
        """One capture period; ``gap`` as the microphone says (an overflow: the canceller's
        timeline starts again, as in the daemon)."""
        if self.pipeline.frontend is None:
            self.pipeline.mic_opened(rate, channels)
        self.pipeline.on_mic(pcm, gap)
        if self.wake is not None:
            self._peak = max(self._peak, self.wake.score)
        stop = self.pipeline.stop_word
        if stop is not None and (self.pipeline.speaking or stop.heard > self._stops):
            self._stop_peak = max(self._stop_peak or 0.0, stop.peak)
            self._stops = stop.heard

    def _removed_db(self, since: tuple[float, float]) -> float | None:
        front = self.pipeline.frontend
        if front is None:
            return None
        e_in, e_out = front.echo_in - since[0], front.echo_out - since[1]
        return 10 * math.log10(e_in / max(e_out, 1.0)) if e_in > 0 else None

    def line(self) -> str:
        """The meter line's hands-free part, for the stretch since the last line."""
        parts = []
        if self.wake is not None:
            parts.append(f"wake {self._peak:4.2f}")
        if self.stop_word:
            parts.append("stop  -  " if self._stop_peak is None else f"stop {self._stop_peak:4.2f}")
        if self.canceller is not None:
            removed = self._removed_db(self._energy)
            parts.append(f"echo removed {removed:5.1f} dB" if removed is not None else "echo removed   -  ")
        front = self.pipeline.frontend
        self._energy = (front.echo_in, front.echo_out) if front is not None else (0.0, 0.0)
        self._peak, self._stop_peak = 0.0, None
        if self.pipeline.stop_word is not None:
            self.pipeline.stop_word.peak = 0.0
        return "  ".join(parts)

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {"wake_word": self.wake_word if self.wake is not None else None,
                               "wake_detections": self.wake.detections if self.wake is not None else 0}
        if self.pipeline.stop_word is not None:
            out |= {"stop_word": self.stop_word, "stop_detections": self.pipeline.stop_word.heard}
        if self.canceller is not None:
            removed = self._removed_db((0.0, 0.0))
            out["echo_removed_db"] = None if removed is None or not np.isfinite(removed) else round(removed, 1)
        return out

    def close(self) -> None:
        if self.speaker is not None:
            self.speaker.close()


def checks(config: Config) -> list[tuple[str, str, str, str]]:
    """``pivoice doctor``: (name, PASS/WARN/FAIL/SKIP, detail, fix) for the echo canceller and
    the wake and stop word models, each loaded and run on a little silence."""
    canceller = _check_canceller(config.audio.echo_cancel)
    return [canceller, _check_wake(config), _check_stop(config, has_canceller=canceller[1] == "PASS")]


def _check_canceller(kind: str) -> tuple[str, str, str, str]:
    from ..audio import aec

    name = "echo canceller"
    if kind == "off":
        return (name, "SKIP", "[audio] echo_cancel = \"off\": the echo guard decides", "")
    try:
        canceller = aec.create("webrtc" if kind == "auto" else kind)
        assert canceller is not None
        canceller.process(np.zeros(canceller.rate // 100, np.int16))
    except aec.AecUnavailable as exc:
        fix = str(exc).split(": ", 1)[-1]
        if kind == "auto":
            return (name, "WARN", "none installed: the echo guard is used, and a loud speaker next to the "
                    "microphone may interrupt the device", fix)
        return (name, "FAIL", f"[audio] echo_cancel = {kind!r} cannot load", fix)
    except RuntimeError as exc:       # the library loads but refuses to run
        return (name, "FAIL", f"[audio] echo_cancel = {kind!r} loads but fails: {exc}",
                "reinstall it (pip install --force-reinstall 'pivoice[aec]'), or set [audio] echo_cancel = \"off\"")
    apm = getattr(canceller, "_apm", None)
    calls = str(getattr(apm, "kind", ""))
    library = getattr(getattr(apm, "_lib", None), "version", "")
    how = {"direct": f", called directly in livekit {library}'s library" if library else ", called directly",
           "wrapper": ", through livekit's Python API (slower: see the log)"}.get(calls, "")
    return (name, "PASS", f"{getattr(canceller, 'name', kind)} loads and runs "
            f"([audio] echo_cancel = {kind!r}{how})", "")


def _load(name: str, make: Callable[[WakeConfig], WakeWordDetector | None],
          wake: WakeConfig) -> WakeWordDetector | tuple[str, str, str, str]:
    """The detector ``make`` builds, run on a second of silence; or the FAIL that says why not."""
    try:
        detector = make(wake)
        assert detector is not None
        detector.process(bytes(32000))
    except PivoiceError as exc:
        return (name, "FAIL", str(exc), exc.fix)
    return detector


def _check_wake(config: Config) -> tuple[str, str, str, str]:
    name = "wake word"
    if not config.wake.enabled:
        return (name, "SKIP", "[wake] word is empty: every utterance in the room is a turn", "")
    detector = _load(name, build.wake_detector, config.wake)
    if isinstance(detector, tuple):
        return detector
    return (name, "PASS", f"{detector.word!r} loads and runs (threshold {detector.threshold:.2f}; "
            f"follow-up {config.wake.follow_up:g} s)", "")


def _check_stop(config: Config, *, has_canceller: bool) -> tuple[str, str, str, str]:
    name = "stop word"
    if not config.wake.stop:
        return (name, "SKIP", "[wake] stop is empty: the wake word or the button stops the device", "")
    detector = _load(name, build.stop_detector, config.wake)
    if isinstance(detector, tuple):
        return detector
    detail = (f"{detector.word!r} loads and runs (threshold {detector.threshold:.2f}; heard only while the "
              "device speaks)")
    if not has_canceller:
        return (name, "WARN", f"{detail}, but there is no echo canceller: the device's own voice can say the "
                "word and stop its reply", "set [audio] echo_cancel = \"webrtc\" (pip install 'pivoice[aec]')")
    return (name, "PASS", detail, "")
