"""``[wake]``: the local wake word (off unless ``word`` or ``model`` is set), read and checked.

    [wake]
    word = "hey_jarvis"      # a built-in microWakeWord model: hey_jarvis, okay_nabu, alexa, hey_mycroft
    model = ""               # or the path of a custom model's .json (its .tflite beside it)
    threshold = 0.0          # 0 = the model's own cutoff; else 0..1 (higher: fewer false accepts)
    follow_up = 5.0          # seconds after a reply during which a turn needs no wake word
    earcon = false           # a short tone when the word is heard
    stop = ""                # a stop word: heard while the device speaks, it stops the reply and
                             # nothing goes up (a built-in name or a model's .json; works without
                             # a wake word too)
    stop_threshold = 0.0     # the stop word's own: 0 = its model's cutoff
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

BUILTIN_WORDS = ("hey_jarvis", "okay_nabu", "alexa", "hey_mycroft")


@dataclass(frozen=True)
class WakeConfig:
    word: str = ""
    model: str = ""
    threshold: float = 0.0
    follow_up: float = 5.0
    earcon: bool = False
    stop: str = ""
    stop_threshold: float = 0.0

    @property
    def enabled(self) -> bool:
        return bool(self.word or self.model)

    @property
    def detector_model(self) -> str:
        """What :class:`device.audio.wake.WakeWordDetector` loads: the file, else the name."""
        return self.model or self.word


def read_wake(reader: Any) -> WakeConfig:
    """``reader`` is config._Reader (section, fill, within, fail)."""
    table = reader.section("wake", tuple(f.name for f in fields(WakeConfig)))
    wake: WakeConfig = reader.fill("wake", WakeConfig, table, WakeConfig())
    if wake.word and not wake.model and wake.word not in BUILTIN_WORDS:
        reader.fail("[wake] word", f"{wake.word!r} is not a built-in model; use one of {', '.join(BUILTIN_WORDS)} "
                    "(or \"\" for no wake word), or set [wake] model to a custom model's .json file")
    if wake.model and not wake.model.endswith((".json", ".tflite")):
        reader.fail("[wake] model", f"{wake.model!r}: the path of a microWakeWord model's .json file")
    if wake.stop and wake.stop not in BUILTIN_WORDS and not wake.stop.endswith((".json", ".tflite")):
        reader.fail("[wake] stop", f"{wake.stop!r}: a built-in model ({', '.join(BUILTIN_WORDS)}) or the path of a "
                    "microWakeWord model's .json file, such as the \"stop\" model of the micro-wake-word-models "
                    "collection (or \"\" for no stop word)")
    if wake.stop and wake.stop in (wake.word, wake.model):
        reader.fail("[wake] stop", f"{wake.stop!r} is the wake word too: the word that stops the device must be "
                    "another one")
    if wake.stop_threshold and not wake.stop:
        reader.fail("[wake] stop_threshold", "is set but [wake] stop is empty: set the stop word's model, "
                    "or remove stop_threshold")
    if wake.stop_threshold:
        reader.within("[wake] stop_threshold", wake.stop_threshold, 0.01, 0.99, " (or 0: the model's own)")
    if wake.threshold:
        reader.within("[wake] threshold", wake.threshold, 0.01, 0.99)
    reader.within("[wake] follow_up", wake.follow_up, 0, 600, " seconds")
    return wake
