"""What the simulated model says: small deterministic rules over the conversation.

* A user turn that names a declared tool (a word of its name, e.g. "time" for ``get_time``)
  becomes a function call; a number in the part of the turn that names it fills the tool's
  first numeric parameter. A reasoning model (gpt-realtime-2*) calls every tool the turn
  names, in parallel ("what time is it and set the volume to 30"); the others call the first.
* After ``function_call_output`` items the reply reads their results.
* A reasoning model speaks a short ``commentary`` preamble before tool calls and before long
  answers (reference section 1, "Preambles and phases").
* After an idle timeout (``input_audio_buffer.timeout_triggered``) it asks whether anyone is there.
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
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

_STOP_WORDS = {"get", "set", "the", "a", "to", "of", "and", "do", "is", "device", "current"}
_RECALL = re.compile(r"\b(what did i (just )?say|before|earlier|remember)\b", re.I)
_CLAUSES = re.compile(r"\band\b|\bthen\b|[,;]", re.I)
#: Answers of at least this many words get a preamble from a reasoning model.
LONG_ANSWER_WORDS = 12
TOOL_PREAMBLE = "Let me check that."
LONG_PREAMBLE = "Let me think about that."
IDLE_PROMPT = "Are you still there?"


@dataclass(frozen=True)
class Call:
    tool: str
    arguments: str


@dataclass(frozen=True)
class Reply:
    """A response's plan: an optional spoken preamble, then tool calls or a final answer."""

    text: str | None = None
    calls: tuple[Call, ...] = ()
    preamble: str | None = None


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


def decide(items: list[dict[str, Any]], tools: list[dict[str, Any]], *, heard_s: float = 0.0,
           reasoning: bool = False, parallel: bool = True, idle: bool = False) -> Reply:
    """The reply to the conversation so far (items in order, GA shape); ``heard_s`` is the
    length of the last user audio turn, for when it could not be transcribed; ``reasoning``
    for the gpt-realtime-2 family (preambles, parallel calls unless ``parallel`` is off);
    ``idle`` when the turn is the silence an idle timeout committed."""
    reply = _answer(items, tools, heard_s=heard_s, many=reasoning and parallel, idle=idle)
    if not reasoning:
        return reply
    if reply.calls:
        return Reply(calls=reply.calls, preamble=TOOL_PREAMBLE)
    # The answer to tool outputs follows its own preamble of the call's response: none again.
    if reply.text and len(reply.text.split()) >= LONG_ANSWER_WORDS and not _trailing_outputs(items):
        return Reply(text=reply.text, preamble=LONG_PREAMBLE)
    return reply


def _answer(items: list[dict[str, Any]], tools: list[dict[str, Any]], *, heard_s: float, many: bool,
            idle: bool) -> Reply:
    outputs = _trailing_outputs(items)
    if outputs:
        results = "; ".join(_summarise(o.get("output", "")) for o in outputs)
        return Reply(text=f"Done. The result{'s are' if len(outputs) > 1 else ' is'} {results}.")
    if idle:
        return Reply(text=IDLE_PROMPT)
    user_turns = [_item_text(i) for i in items if i.get("role") == "user"]
    said = user_turns[-1] if user_turns else ""
    if said and _RECALL.search(said) and len(user_turns) > 1:
        first = next((t for t in user_turns if t), "")
        return Reply(text=f"Earlier you said: {first}.")
    calls = _calls(said, tools)
    if calls:
        return Reply(calls=calls if many else calls[:1])
    if said:
        return Reply(text=f"You said: {said}.")
    if heard_s:
        return Reply(text=f"I heard you speak for {heard_s:.1f} seconds.")
    return Reply(text="Hello! How can I help?")


def _trailing_outputs(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The function outputs at the end of the conversation (one per call of the last response)."""
    out: list[dict[str, Any]] = []
    for item in reversed(items):
        if item.get("type") != "function_call_output":
            break
        out.insert(0, item)
    return out


def _calls(said: str, tools: list[dict[str, Any]]) -> tuple[Call, ...]:
    """One call per declared tool the turn names, in the order the turn names them; each takes
    its arguments from the clause that names it ("... and set the volume to 30")."""
    clauses = [c for c in _CLAUSES.split(said) if c.strip()] or [said]
    found: list[tuple[int, Call]] = []
    for tool in tools:
        name = tool.get("name")
        if not name:
            continue
        for n, clause in enumerate(clauses):
            if _tool_words(name) & set(re.findall(r"[a-z]+", clause.lower())):
                found.append((n, Call(tool=name, arguments=_arguments_for(tool, clause))))
                break
    return tuple(call for _, call in sorted(found, key=lambda f: f[0]))


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


#: One recogniser for the process, and it takes one utterance at a time: every session's
#: turns are transcribed on threads of their own (two devices on one simulator).
_DECODING = threading.Lock()


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
    with _DECODING:
        decoder.start_utt()
        decoder.process_raw(pcm16k, full_utt=True)
        decoder.end_utt()
        hyp = decoder.hyp()
    return hyp.hypstr.strip() if hyp else ""
