"""Session rotation before the limit, with the conversation carried over and verified."""

from __future__ import annotations

from device.state import DeviceState

from .conftest import clip16k


def user_texts(sim_session) -> list[str]:
    return [" ".join(p.get("text") or p.get("transcript") or "" for p in i.get("content") or ())
            for i in sim_session.items if i.get("role") == "user"]


async def test_conversation_across_two_rotations_keeps_its_context(device_factory):
    device = await device_factory(sim_options={"session_limit_s": 12})
    app = device.app
    await device.wait_state(DeviceState.IDLE)

    device.mic.say(clip16k("goforward.raw"))
    first = await device.spoken_reply(0)
    assert "go forward ten meters" in first.data["text"].lower()

    # Rotation 1: the device opened the next session before the limit; nothing expired.
    await device.wait_for(lambda: app.manager.stats.rotations >= 1, "the first rotation")
    assert device.sim.stats.expired == 0
    second_session = device.sim.stats.sessions[1]
    assert any("go forward ten meters" in t.lower() for t in user_texts(second_session))

    # The replayed reply made the simulated model answer in text only (field notes item 3):
    # the device noticed, removed what biased it, and the person still heard the answer.
    n = device.count("reply")
    app.manager.say("What did I say before?")
    answer = await device.spoken_reply(n)
    assert answer.data["text"] == "Earlier you said: go forward ten meters."
    assert app.conversation.stats.text_only_fallbacks == 1
    assert device.count("carry_over_fallback") == 1

    # Rotation 2: replies now travel in the instructions only, and the first reply has audio.
    await device.wait_for(lambda: app.manager.stats.rotations >= 2, "the second rotation")
    assert device.sim.stats.expired == 0
    third = device.sim.stats.sessions[2]
    assert not third.text_bias
    assert "go forward ten meters" in (third.session.get("instructions") or "").lower() or \
        any("go forward" in t.lower() for t in user_texts(third))
    n = device.count("reply")
    app.manager.say("Do you remember what I said earlier?")
    again = await device.spoken_reply(n)
    assert again.data["text"] == "Earlier you said: go forward ten meters."
    assert app.conversation.stats.text_only_fallbacks == 1

    # No turn was lost: every turn the person took reached a session and got a spoken reply.
    assert app.conversation.stats.turns == 1  # one spoken turn (the others were typed)
    assert [e.data["audio"] for e in device.of("reply") if e.data["text"]].count(True) == 3
    assert "offline" not in device.states()


async def test_carry_over_without_the_text_only_quirk_needs_no_fallback(device_factory):
    device = await device_factory(sim_options={"session_limit_s": 12, "quirks": False})
    await device.wait_state(DeviceState.IDLE)
    device.mic.say(clip16k("goforward.raw"))
    await device.spoken_reply(0)
    await device.wait_for(lambda: device.app.manager.stats.rotations >= 1, "a rotation")
    n = device.count("reply")
    device.app.manager.say("What did I say before?")
    answer = await device.spoken_reply(n)
    assert answer.data["text"] == "Earlier you said: go forward ten meters."
    assert device.app.conversation.stats.text_only_fallbacks == 0


async def test_long_hold_starts_a_fresh_conversation(device_factory):
    device = await device_factory()
    await device.wait_state(DeviceState.IDLE)
    device.mic.say(clip16k("goforward.raw"))
    await device.spoken_reply(0)
    pin = device.pins.pin(17)
    pin.drive_low()
    await device.wait_for(lambda: device.count("new_conversation") == 1, "the long hold", timeout=10)
    pin.drive_high()
    await device.wait_for(lambda: len(device.sim.stats.sessions) == 2 and device.app.manager.conn is not None
                          and device.app.manager.stats.session_id == device.sim.stats.sessions[1].session["id"],
                          "the fresh session")
    assert device.sim.stats.sessions[1].items == []
    assert len(device.app.history) == 0
    n = device.count("reply")
    device.app.manager.say("What did I say before?")
    reply = await device.spoken_reply(n)
    assert "earlier you said" not in reply.data["text"].lower()
