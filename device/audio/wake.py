"""Local wake word on the 16 kHz front end: microWakeWord models through ``pymicro-wakeword``.

Fed 10 or 20 ms of 16 kHz PCM16 at a time (the frames the VAD already sees), it answers a
score (0..1, the model's sliding-window mean) and whether the word was heard. Time is the audio
itself: the refractory period after a detection is counted in samples fed, not on a clock, so
one "hey jarvis" gives one detection however the frames are batched.

Models: a built-in name (``hey_jarvis``, ``okay_nabu``, ``alexa``, ``hey_mycroft``) or the path
of a microWakeWord model's JSON file (the ``.tflite`` beside it). The threshold defaults to the
model's own ``probability_cutoff``; ``[wake] threshold`` overrides it per model.
Why microWakeWord over openWakeWord: bench/wake_bench.py (figures in README.md, "Wake word").
"""

from __future__ import annotations

import json
import logging
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

logger = logging.getLogger(__name__)

RATE = 16000
CHUNK_BYTES = 320            # the 10 ms the feature front end consumes at a time
BUILTIN = ("hey_jarvis", "okay_nabu", "alexa", "hey_mycroft")


class WakeHook(Protocol):
    """Told when the wake word is heard (the app publishes "wake" on the bus)."""

    def __call__(self, word: str, score: float) -> None: ...


class WakeWordUnavailable(RuntimeError):
    """The library or the model is missing; the message names the fix."""


@dataclass(frozen=True)
class WakeResult:
    score: float
    detected: bool


def _library(key: str = "[wake] word") -> Any:
    try:
        import pymicro_wakeword
    except ImportError as exc:
        raise WakeWordUnavailable(f"{key} needs pymicro-wakeword: pip install 'pivoice[wake]' "
                                  f"(or set {key} = \"\" to turn it off)") from exc
    return pymicro_wakeword


def model_config(word: str, key: str = "[wake] word") -> Path:
    """The JSON config of a built-in model name or a model file path; clear errors otherwise."""
    lib = _library(key)
    path = Path(word).expanduser()
    if word in BUILTIN:
        path = Path(lib.__file__).parent / "models" / f"{word}.json"
    elif path.suffix == ".tflite":
        path = path.with_suffix(".json")
    elif path.suffix != ".json":
        raise WakeWordUnavailable(f"{key} = {word!r}: use one of {', '.join(BUILTIN)} "
                                  "or the path of a microWakeWord model's .json file")
    if not path.is_file():
        raise WakeWordUnavailable(f"{key}: model file {path} not found")
    try:
        config = json.loads(path.read_text())
        model = path.parent / config["model"]
        config["micro"]["probability_cutoff"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise WakeWordUnavailable(f"{key}: {path} is not a microWakeWord model config ({exc})") from exc
    if not model.is_file():
        raise WakeWordUnavailable(f"{key}: {path} names {model}, which is missing")
    return path


class WakeWordDetector:
    """One wake word; ``process`` 16 kHz PCM16 in, :class:`WakeResult` out."""

    def __init__(self, word: str = "hey_jarvis", *, threshold: float | None = None,
                 refractory_s: float = 2.0, key: str = "[wake] word") -> None:
        """``key``: the config key errors name (``[wake] word`` or ``[wake] stop``)."""
        lib = _library(key)
        config = model_config(word, key)
        self._model = lib.MicroWakeWord.from_config(config)
        self._features = lib.MicroWakeWordFeatures()
        self.word = self._model.wake_word
        self.threshold = self._model.probability_cutoff if threshold is None else threshold
        if not 0.0 < self.threshold < 1.0:
            named = "[wake] threshold" if key == "[wake] word" else f"{key}_threshold"
            raise ValueError(f"{named} must be between 0 and 1, not {self.threshold}")
        self._refractory = int(refractory_s * RATE)
        self._quiet_for = 0          # samples still to ignore after a detection
        self._armed = True           # re-armed once the score falls below the threshold
        self._windows = 0            # feature windows fed; the model runs on every stride-th
        self._pending = b""
        self.score = 0.0
        self.detections = 0

    def process(self, pcm16k: bytes) -> WakeResult:
        """Any whole number of samples (10 or 20 ms frames in practice)."""
        if len(pcm16k) % 2:
            raise ValueError("wake word input is PCM16: an even number of bytes")
        data = self._pending + pcm16k
        usable = len(data) - len(data) % CHUNK_BYTES
        self._pending = data[usable:]
        detected = False
        best = 0.0
        for start in range(0, usable, CHUNK_BYTES):
            heard = self._chunk(data[start:start + CHUNK_BYTES])
            detected = detected or heard
            best = max(best, self.score)
        return WakeResult(best, detected)

    def _chunk(self, chunk: bytes) -> bool:
        heard = False
        for features in self._features.process_streaming(chunk):
            prob = self._model.process_streaming_prob(features)
            self._windows += 1
            if self._windows % self._model.stride:
                continue  # no inference this window: the library answers 0.0, not a score
            self.score = 0.0 if prob is None else float(prob)
            if self.score <= self.threshold:
                self._armed = True
            elif self._armed and self._quiet_for <= 0:
                heard, self._armed = True, False
        if self._quiet_for > 0:
            self._quiet_for -= CHUNK_BYTES // 2
        if heard:
            self.detections += 1
            self._quiet_for = self._refractory
            logger.info("wake word %r heard (score %.2f)", self.word, self.score)
        return heard

    def reset(self) -> None:
        """Forget the audio heard so far (after a turn, so its tail cannot trigger)."""
        self._model.reset()
        self._features.reset()
        self._pending = b""
        self._windows = 0
        self._armed = True
        self.score = 0.0

    def close(self) -> None:
        self._model.close()


class SpeechOnlyWake:
    """Runs ``detector`` only around speech: a silent room costs no inference at all.

    The detector is fed from ``preroll_ms`` before the first frame webrtcvad calls speech (it is
    reset first, so its state is that of silence, as it would be) until ``hold_ms`` after the
    last; in between it sees every frame, as if it ran all the time."""

    def __init__(self, detector: WakeWordDetector, *, preroll_ms: int = 400, hold_ms: int = 2000,
                 frame_ms: int = 20) -> None:
        self.detector = detector
        self.word = detector.word
        self._ring: deque[bytes] = deque(maxlen=max(1, preroll_ms // frame_ms))
        self._hold = hold_ms // frame_ms
        self._left = 0               # frames still to feed after the last speech
        self.fed_frames = 0
        self.skipped_frames = 0

    @property
    def score(self) -> float:
        return self.detector.score

    @property
    def detections(self) -> int:
        return self.detector.detections

    @property
    def threshold(self) -> float:
        return self.detector.threshold

    def process(self, pcm16k: bytes, speech: bool = True) -> WakeResult:
        if speech and self._left <= 0:
            self.detector.reset()
            frames = list(self._ring)
            self._ring.clear()
            result = WakeResult(0.0, False)
            for frame in frames:
                heard = self.detector.process(frame)
                result = WakeResult(max(result.score, heard.score), result.detected or heard.detected)
            self.fed_frames += len(frames)
        else:
            result = WakeResult(0.0, False)
        if speech:
            self._left = self._hold
        if self._left <= 0:
            self._ring.append(pcm16k)
            self.skipped_frames += 1
            return result
        self._left -= 1
        self.fed_frames += 1
        heard = self.detector.process(pcm16k)
        return WakeResult(max(result.score, heard.score), result.detected or heard.detected)

    def reset(self) -> None:
        self.detector.reset()
        self._ring.clear()
        self._left = 0


class StopWord:
    """``[wake] stop``: a word that stops the device while it speaks, and nothing else.

    Fed only while a reply plays (or a talk-over holds it), and there only around speech
    (:class:`SpeechOnlyWake`): a quiet device, or a silent room, costs no inference. Heard, the
    reply stops as for the button: cancelled, truncated at what was played, and nothing the
    person said goes up, and no turn follows (with a wake word the follow-up window closes:
    ``TurnTaker.stopped``); GPT-Live still hears the word (every frame goes up there). Between
    replies the detector starts afresh. It needs the echo canceller in front: without one the
    device's own voice can say the word (the daemon warns)."""

    def __init__(self, detector: WakeWordDetector) -> None:
        self._words = SpeechOnlyWake(detector)
        self.word = detector.word
        self.heard = 0
        self.peak = 0.0   # its best score since the device last started speaking (mic-test shows it)
        self._listening = False

    @property
    def score(self) -> float:
        return self._words.score

    def process(self, pcm16k: bytes, speech: bool, speaking: bool) -> bool:
        """One frame; True when the word was heard while the device speaks."""
        if not speaking:
            if self._listening:
                self._words.reset()
                self._listening = False
            return False
        if not self._listening:
            self.peak = 0.0
        self._listening = True
        result = self._words.process(pcm16k, speech)
        self.peak = max(self.peak, result.score)
        if not result.detected:
            return False
        self.heard += 1
        logger.info("stop word %r heard (score %.2f): the reply stops", self.word, self.score)
        return True


def earcon_tone(rate: int, gain: float = 1.0) -> bytes:
    """A short soft tone (the wake word was heard): 120 ms of 880 Hz, faded in and out."""
    t = np.arange(rate * 120 // 1000) / rate
    tone = 0.15 * 32767 * np.sin(2 * np.pi * 880 * t) * np.hanning(len(t))
    return (tone * gain).astype("<i2").tobytes()
