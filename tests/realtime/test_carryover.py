"""What a new session is given of the conversation."""

from __future__ import annotations

from device.realtime.carryover import DIGEST_CHARS, History, digest, instructions_with


def conversation(n: int) -> History:
    history = History()
    for i in range(n):
        history.placeholder(f"u{i}", "user")          # committed before its transcript arrives
        history.record(f"a{i}", "assistant", f"answer {i}")
        history.record(f"u{i}", "user", f"question {i}")
    return history


def test_turns_keep_the_order_they_were_taken_in():
    assert [t.text for t in conversation(2).turns] == ["question 0", "answer 0", "question 1", "answer 1"]


def test_recent_turns_become_items_older_ones_a_digest():
    history = conversation(5)
    items, text = history.carry(4)
    assert [(i.role, i.text) for i in items] == [("user", "question 3"), ("assistant", "answer 3"),
                                                 ("user", "question 4"), ("assistant", "answer 4")]
    assert all(i.id and i.id.startswith("carry_") and len(i.id) <= 32 for i in items)
    assert text.splitlines()[0] == "The person: question 0" and "You: answer 2" in text
    assert len(history.carried_assistant_ids()) == 2


def test_after_a_text_only_reply_replies_travel_in_the_digest_only():
    history = conversation(2)
    history.carry(4)
    history.assistant_items_failed()
    items, text = history.carry(4)
    assert [i.role for i in items] == ["user", "user"]
    assert "You: answer 1" in text and history.carried_assistant_ids() == []


def test_digest_keeps_the_newest_when_it_must_cut():
    history = conversation(200)
    text = digest(history.turns)
    assert len(history.turns) == 100                      # it keeps the last 100 turns
    assert len(text) <= DIGEST_CHARS and text.endswith("answer 199")
    assert "question 150" not in text


def test_instructions_with_digest():
    assert instructions_with("Be brief.", "") == "Be brief."
    assert instructions_with("Be brief.", "The person: hi").startswith("Be brief.\n\nThis conversation continues")
