"""The conversation as the device remembers it, and what a new session is given of it.

A Realtime session forgets everything when it ends (rotation before the time limit, a network
loss). The device keeps the text of each turn (the server's transcripts) and hands a new
session two things (livekit is the only other system that does this, field notes item 2):

* the last ``recent`` turns as conversation items (user turns as ``input_text``, replies as
  assistant ``output_text``), so "what did I just say" still works;
* a digest of the older turns, appended to the instructions.

Replayed assistant text can make the model answer in text only (field notes item 3). The
session manager checks the first reply after a carry-over; when it has no audio it calls
:meth:`History.assistant_items_failed`, which deletes nothing here but makes later carry-overs
put replies in the digest only, and :meth:`carried_assistant_ids` tells it which items to delete.
"""

from __future__ import annotations

import itertools
import logging
import secrets
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from .models import Item

logger = logging.getLogger(__name__)
DIGEST_CHARS = 1500


@dataclass
class Turn:
    role: str          # "user" | "assistant"
    text: str
    interrupted: bool = False


class History:
    def __init__(self, *, keep: int = 100) -> None:
        self.keep = keep
        self._turns: OrderedDict[str, Turn] = OrderedDict()
        self._ids = itertools.count(1)
        self.assistant_items = True      # carry replies as items (until the model goes text-only)
        self._carried_assistant: list[str] = []

    # ------------------------------------------------------------------ recording
    def placeholder(self, key: str, role: str) -> None:
        """Reserve a turn's place (a committed user turn whose transcript comes later)."""
        if key not in self._turns:
            self._turns[key] = Turn(role, "")
            self._trim()

    def record(self, key: str, role: str, text: str, *, interrupted: bool = False) -> None:
        text = " ".join(text.split())
        turn = self._turns.get(key)
        if turn is None:
            self._turns[key] = Turn(role, text, interrupted)
            self._trim()
        else:
            turn.text, turn.interrupted = text or turn.text, interrupted or turn.interrupted

    def mark_interrupted(self, key: str) -> None:
        if key in self._turns:
            self._turns[key].interrupted = True

    def clear(self) -> None:
        self._turns.clear()
        self._carried_assistant.clear()

    def _trim(self) -> None:
        while len(self._turns) > self.keep:
            self._turns.popitem(last=False)

    @property
    def turns(self) -> list[Turn]:
        return [t for t in self._turns.values() if t.text]

    def __len__(self) -> int:
        return len(self.turns)

    # ------------------------------------------------------------------ carrying over
    def carry(self, recent: int) -> tuple[list[Item], str]:
        """(items for the last ``recent`` turns, digest of the earlier ones) for a new session."""
        turns = self.turns
        older, last = (turns[:-recent], turns[-recent:]) if recent else (turns, [])
        items: list[Item] = []
        self._carried_assistant = []
        for turn in last:
            if turn.role == "user":
                items.append(_with_id(Item.user_text(turn.text)))
            elif self.assistant_items:
                item = _with_id(Item.assistant_text(turn.text + (" …" if turn.interrupted else "")))
                self._carried_assistant.append(item.id or "")
                items.append(item)
        digest_turns = older if self.assistant_items else older + [t for t in last if t.role == "assistant"]
        return items, digest(digest_turns)

    def carried_assistant_ids(self) -> list[str]:
        return list(self._carried_assistant)

    def assistant_items_failed(self) -> None:
        self.assistant_items = False
        self._carried_assistant = []


def _with_id(item: Item) -> Item:
    from dataclasses import replace

    return replace(item, id=f"carry_{secrets.token_hex(8)}")


def digest(turns: list[Turn]) -> str:
    """A short account of turns, newest kept when it must be cut."""
    if not turns:
        return ""
    lines = [f"{'The person' if t.role == 'user' else 'You'}: {t.text}{' (interrupted)' if t.interrupted else ''}"
             for t in turns]
    out: list[str] = []
    size = 0
    for line in reversed(lines):
        size += len(line) + 1
        if size > DIGEST_CHARS:
            break
        out.append(line)
    return "\n".join(reversed(out))


def instructions_with(base: str, digest_text: str) -> str:
    if not digest_text:
        return base
    return (f"{base}\n\nThis conversation continues from an earlier session. What was said before, "
            f"oldest first:\n{digest_text}\nContinue naturally and answer by voice.")


def text_only_repair(history: History, messages: list[Item], settings: Any, dialect: Any) -> list[Any]:
    """The first reply after a carry-over was text only (field notes item 3): delete the replayed
    replies that biased the model and the text reply, and ask again with the older turns in the
    instructions; later carry-overs put replies in the digest only. The events to send."""
    from . import events as ev
    from .dialect import render_response_params

    carried = history.carried_assistant_ids()
    logger.warning("the first reply after the carry-over was text only; removing %d carried "
                   "replies and asking again", len(carried))
    history.assistant_items_failed()
    out: list[Any] = [ev.ItemDelete(item_id=item_id) for item_id in carried + [m.id for m in messages if m.id]]
    instructions = instructions_with(settings.instructions or "", digest(history.turns[-12:]))
    out.append(ev.ResponseCreate(response=render_response_params(dialect, instructions=instructions)))
    return out


def carry_over(history: History, recent: int | None, settings: Any, dialect: Any,
               model: str | None) -> tuple[list[Any], tuple[int, int]]:
    """The events that give a new session the conversation so far (none when ``recent`` is
    None: a fresh conversation), and (items, digest characters) carried."""
    from dataclasses import replace

    from . import events as ev
    from .dialect import render_session

    items, earlier = ([], "") if recent is None else history.carry(recent)
    first: list[Any] = []
    if earlier:
        carried = replace(settings, instructions=instructions_with(settings.instructions or "", earlier))
        first.append(ev.SessionUpdate(session=render_session(carried, dialect, model=model)))
    first.extend(ev.ItemCreate(item=item) for item in items)
    return first, (len(items), len(earlier))
