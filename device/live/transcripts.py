"""Transcript fragments into turns, sans-I/O (reference section 4: "group them yourself").

Theory of operation: GPT-Live sends ``session.input_transcript.delta`` and
``session.output_transcript.delta`` fragments on one session timeline (``start_ms``/``end_ms``),
with no turn or done events, and the two roles may overlap. :class:`TranscriptGrouper` takes
each fragment (:meth:`add`) and the timeline's "now" (:meth:`flush_until`, time as an input)
and returns the turns that are complete, for the events stream, the status and the carry-over
(:func:`to_history` makes ``session.input`` messages of them).

Rules (defaults are the SDK's ``TranscriptGrouper`` defaults; the rules themselves are ours):

* a role's turn goes on while its fragments are less than ``min_turn_separation_ms`` (person)
  or ``assistant_silence_ms`` (model) apart;
* a person's turn longer than ``backchannel_max_duration_ms`` takes the floor: the model's open
  turn ends there, ``interrupted`` if the person came in while it was speaking;
* a short person's turn during the model's turn, with no other speech of the person in the
  ``backchannel_isolation_ms`` before it, is a backchannel ("mm-hm"): kept, flagged, and left
  out of the history.
"""

from __future__ import annotations

from dataclasses import dataclass

from .models import InputMessage

USER, ASSISTANT = "user", "assistant"


@dataclass(frozen=True)
class GroupingRules:
    min_turn_separation_ms: int = 500
    assistant_silence_ms: int = 2000
    backchannel_max_duration_ms: int = 1000
    backchannel_isolation_ms: int = 2000


@dataclass
class Turn:
    role: str
    text: str
    start_ms: int
    end_ms: int
    backchannel: bool = False
    interrupted: bool = False

    @property
    def duration_ms(self) -> int:
        return self.end_ms - self.start_ms


class TranscriptGrouper:
    def __init__(self, rules: GroupingRules | None = None) -> None:
        self.rules = rules or GroupingRules()
        self._open: dict[str, Turn] = {}
        self._last_user_end_ms: int | None = None   # of the person's previous closed turn

    def add(self, role: str, delta: str, start_ms: int, end_ms: int) -> list[Turn]:
        """One fragment; returns the turns it completes (oldest first)."""
        if role not in (USER, ASSISTANT):
            raise ValueError(f"role must be {USER!r} or {ASSISTANT!r}, not {role!r}")
        done: list[Turn] = []
        turn = self._open.get(role)
        if turn is not None and start_ms - turn.end_ms >= self._gap(role):
            done.append(self._close(role))
            turn = None
        if turn is None:
            self._open[role] = Turn(role, delta.strip(), start_ms, max(start_ms, end_ms))
        else:
            joiner = " " if start_ms - turn.end_ms >= 200 and not delta[:1].isspace() else ""
            turn.text = (turn.text + joiner + delta).strip()
            turn.end_ms = max(turn.end_ms, end_ms)
        if role == USER:
            done += self._user_took_floor()
        return sorted(done, key=lambda t: t.start_ms)

    def flush_until(self, now_ms: int) -> list[Turn]:
        """The turns whose silence has lasted long enough by ``now_ms`` on the session timeline."""
        return [self._close(role) for role, turn in sorted(self._open.items(), key=lambda kv: kv[1].start_ms)
                if now_ms - turn.end_ms >= self._gap(role)]

    def close(self, role: str) -> list[Turn]:
        """``role``'s open turn, closed now (the device knows it is over: its audio ended)."""
        return [self._close(role)] if role in self._open else []

    def flush(self) -> list[Turn]:
        """Every open turn (the session ended)."""
        return [self._close(role) for role, _ in sorted(self._open.items(), key=lambda kv: kv[1].start_ms)]

    @property
    def open_turns(self) -> list[Turn]:
        return sorted(self._open.values(), key=lambda t: t.start_ms)

    def _gap(self, role: str) -> int:
        return self.rules.min_turn_separation_ms if role == USER else self.rules.assistant_silence_ms

    def _user_took_floor(self) -> list[Turn]:
        user, model = self._open.get(USER), self._open.get(ASSISTANT)
        if user is None or model is None or user.duration_ms <= self.rules.backchannel_max_duration_ms:
            return []
        if user.start_ms < model.start_ms:
            return []
        model.interrupted = user.start_ms <= model.end_ms + self.rules.min_turn_separation_ms
        return [self._close(ASSISTANT)]

    def _close(self, role: str) -> Turn:
        turn = self._open.pop(role)
        if role == USER:
            model = self._open.get(ASSISTANT)
            isolated = (self._last_user_end_ms is None
                        or turn.start_ms - self._last_user_end_ms >= self.rules.backchannel_isolation_ms)
            turn.backchannel = bool(model is not None and turn.start_ms >= model.start_ms and isolated
                                    and turn.duration_ms <= self.rules.backchannel_max_duration_ms)
            self._last_user_end_ms = turn.end_ms
        return turn


def to_history(turns: list[Turn]) -> list[InputMessage]:
    """``session.input`` messages for ``turns``: backchannels and empty turns left out, and
    consecutive turns of one role merged (each message holds exactly one text part)."""
    merged: list[tuple[str, str]] = []
    for turn in sorted(turns, key=lambda t: t.start_ms):
        if turn.backchannel or not turn.text:
            continue
        if merged and merged[-1][0] == turn.role:
            merged[-1] = (turn.role, merged[-1][1] + " " + turn.text)
        else:
            merged.append((turn.role, turn.text))
    return [InputMessage.text(role, text) for role, text in merged]
