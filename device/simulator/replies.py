"""What the simulated model says: small deterministic rules over the conversation.

* A user turn that names a declared tool (a word of its name, e.g. "time" for ``get_time``)
  becomes a function call; a number in the turn fills the first numeric parameter.
* After a ``function_call_output`` the reply reads the result.
* "What did I say before/earlier", "remember": the reply quotes the first user turn in the
  conversation, so carried-over context can be checked from outside.
* Otherwise it repeats what it heard ("You said: …"), or, with no transcript, how long the
  person spoke.
User audio is transcribed with pocketsphinx when it is installed (offline, English).
"""

from __future__ import annotations

import functools
import json
import logging
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

_STOP_WORDS = {"get", "set", "the", "a", "to", "of", "and", "do", "is", "device", "current"}
_RECALL = re.compile(r"\b(what did i (just )?say|before|earlier|remember)\b", re.I)


@dataclass(frozen=True)
class Reply:
    text: str | None = None
    tool: str | None = None
    arguments: str | None = None


def _tool_words(name: str) -> set[str]:
    return {w for w in re.split(r"[_\W]+", name.lower()) if w and w not in _STOP_WORDS}


def _arguments_for(tool: dict[str, Any], text: str) -> str:
    props = ((tool.get("parameters") or {}).get("properties") or {})
    number = re.search(r"-?\d+(\.\d+)?", text)
    args: dict[str, Any] = {}
    for name, schema in props.items():
        if number and isinstance(schema, dict) and schema.get("type") in ("integer", "number"):
            value = float(number.group())
            args[name] = int(value) if schema["type"] == "integer" else value
            break
    return json.dumps(args)


def decide(items: list[dict[str, Any]], tools: list[dict[str, Any]], *, heard_s: float = 0.0) -> Reply:
    """The reply to the conversation so far (items in order, GA shape); ``heard_s`` is the
    length of the last user audio turn, for when it could not be transcribed."""
    last = items[-1] if items else None
    if last and last.get("type") == "function_call_output":
        return Reply(text=f"Done. The result is {_summarise(last.get('output', ''))}.")
    user_turns = [_item_text(i) for i in items if i.get("role") == "user"]
    said = user_turns[-1] if user_turns else ""
    if said and _RECALL.search(said) and len(user_turns) > 1:
        first = next((t for t in user_turns if t), "")
        return Reply(text=f"Earlier you said: {first}.")
    words = set(re.findall(r"[a-z]+", said.lower()))
    for tool in tools:
        if tool.get("name") and _tool_words(tool["name"]) & words:
            return Reply(tool=tool["name"], arguments=_arguments_for(tool, said))
    if said:
        return Reply(text=f"You said: {said}.")
    if heard_s:
        return Reply(text=f"I heard you speak for {heard_s:.1f} seconds.")
    return Reply(text="Hello! How can I help?")


def _summarise(output: str) -> str:
    try:
        value = json.loads(output)
    except ValueError:
        return output[:120]
    if isinstance(value, dict):
        return ", ".join(f"{k} {v}" for k, v in list(value.items())[:4]) or "empty"
    return str(value)[:120]


def _item_text(item: dict[str, Any]) -> str:
    parts = item.get("content") or []
    return " ".join(p.get("text") or p.get("transcript") or "" for p in parts).strip()


@functools.lru_cache(maxsize=1)
def _decoder() -> Any:
    try:
        from pocketsphinx import Decoder  # optional: pip install pocketsphinx
    except ImportError:
        return None
    return Decoder(samprate=16000, loglevel="FATAL")


def transcribe(pcm24k: bytes) -> str | None:
    """English transcript of 24 kHz PCM16, or None when pocketsphinx is not installed."""
    decoder = _decoder()
    if decoder is None or len(pcm24k) < 4800:
        return None
    import soxr
    samples = np.frombuffer(pcm24k, dtype="<i2").astype(np.float32)
    pcm16k = np.clip(soxr.resample(samples, 24000, 16000), -32768, 32767).astype("<i2").tobytes()
    decoder.start_utt()
    decoder.process_raw(pcm16k, full_utt=True)
    decoder.end_utt()
    hyp = decoder.hyp()
    return hyp.hypstr.strip() if hyp else ""
