"""The simulator's recogniser, shared by every session of one simulator."""

from __future__ import annotations

import sys
import threading

import pytest

from device.simulator import replies

pytest.importorskip("pocketsphinx")


def test_turns_of_several_sessions_are_transcribed_at_once(speech_24k, request):
    """Sessions commit their turns on threads of their own, and the recogniser is one: used by
    two at once it refused ('Failed to start utterance processing'), which ended the session
    (close code 1011; seen with two devices on one simulator)."""
    switching = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)          # threads switch often, so an unguarded decoder races
    request.addfinalizer(lambda: sys.setswitchinterval(switching))
    turn = speech_24k[:48000 * 2]       # the clip's first two seconds: all of its words
    heard: list[str | None] = []
    failed: list[BaseException] = []

    def session() -> None:
        for _ in range(2):
            try:
                heard.append(replies.transcribe(turn))
            except Exception as exc:
                failed.append(exc)

    threads = [threading.Thread(target=session) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failed == []
    assert heard == ["go forward ten meters"] * 6     # each as if it were alone
