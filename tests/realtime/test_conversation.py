"""The Realtime conversation core, sans-I/O: events and audio facts in, actions out.
Time is an argument, so deadlines are tested without waiting."""

from __future__ import annotations

import json

import pytest

from device.audio.turns import Actions
from device.conversation import FinishPlayback, Play, Publish, RunTool, StopPlayback
from device.realtime import events as ev
from device.realtime.conversation import RealtimeConversation
from device.realtime.models import ContentPart, Item, Response

PCM_100MS = bytes(4800)  # 100 ms of 24 kHz mono PCM16


def published(actions, kind=None):
    return [a for a in actions if isinstance(a, Publish) and (kind is None or a.kind == kind)]


def sent(conv: RealtimeConversation) -> list[ev.ClientEvent]:
    out = []
    while conv.outbox:
        out.append(conv.outbox.pop())
    return out


def started(conv, rid="resp_1", now=0.0):
    return conv.server_event(ev.ResponseCreated(response=Response(id=rid, status="in_progress")), now)


def delta(rid, item, pcm=PCM_100MS):
    return ev.AudioDelta.from_pcm(pcm, response_id=rid, item_id=item)


def done(rid, output, status="completed"):
    return ev.ResponseDone(response=Response(id=rid, status=status, output=output))


def spoken(item_id, text, phase=None):
    return Item(id=item_id, role="assistant", content=[ContentPart(type="output_audio", transcript=text)])


def call(call_id, name, arguments="{}"):
    return Item(type="function_call", id=f"item_{call_id}", call_id=call_id, name=name, arguments=arguments)


def fresh(**kw) -> RealtimeConversation:
    conv = RealtimeConversation(server_interrupts=kw.pop("server_interrupts", True), **kw)
    conv.begin_session(session_id="sess_1", fresh=True, now=0.0)
    return conv


def test_every_audio_item_of_a_response_plays_in_order():
    conv = fresh()
    started(conv)
    plays = []
    for item in ("preamble", "preamble", "answer", "answer", "answer"):
        plays += [a for a in conv.server_event(delta("resp_1", item), 0.1) if isinstance(a, Play)]
    assert [p.item_id for p in plays] == ["preamble", "preamble", "answer", "answer", "answer"]
    assert conv.received_ms == {"preamble": 200, "answer": 300}
    out = conv.server_event(done("resp_1", [spoken("preamble", "let me check"), spoken("answer", "it is noon")]), 0.2)
    assert published(out, "reply") and not published(out, "reply_finished")   # still playing
    assert published(conv.playback_drained(0.9), "reply_finished")
    assert conv.idle


def test_barge_in_during_the_preamble_truncates_the_preamble_at_what_was_played():
    conv = fresh(server_interrupts=False)
    started(conv)
    for item in ("preamble", "preamble", "preamble"):
        conv.server_event(delta("resp_1", item), 0.1)
    sent(conv)
    out = conv.barge_in("button", {"preamble": 140}, 0.3)
    events = sent(conv)
    assert [type(e) for e in events] == [ev.ResponseCancel, ev.ItemTruncate]
    assert (events[1].item_id, events[1].audio_end_ms) == ("preamble", 140)
    assert published(out, "barge_in")[0].data == {"cause": "button", "item_id": "preamble", "audio_end_ms": 140}
    # what the server still sends of the cancelled response is not played
    assert conv.server_event(delta("resp_1", "answer"), 0.4) == []


def test_never_truncates_an_item_not_heard_nor_past_what_was_received():
    conv = fresh()
    started(conv)
    conv.server_event(delta("resp_1", "preamble"), 0.1)
    conv.server_event(delta("resp_1", "answer"), 0.1)
    sent(conv)
    # the speaker played the whole preamble, nothing of the answer: nothing to truncate
    conv.barge_in("voice", {"preamble": 100}, 0.3)
    assert not [e for e in sent(conv) if isinstance(e, ev.ItemTruncate)]
    # played past what arrived (a clock-based count would): clamped by the items it knows
    conv2 = fresh()
    started(conv2)
    conv2.server_event(delta("resp_1", "answer"), 0.1)
    sent(conv2)
    conv2.barge_in("voice", {"someone_elses_item": 500, "answer": 60}, 0.2)
    truncates = [e for e in sent(conv2) if isinstance(e, ev.ItemTruncate)]
    assert [(t.item_id, t.audio_end_ms) for t in truncates] == [("answer", 60)]


def test_the_server_cancels_its_own_reply_on_a_voice_barge_in_under_server_vad():
    conv = fresh(server_interrupts=True)
    started(conv)
    conv.server_event(delta("resp_1", "answer"), 0.1)
    sent(conv)
    conv.barge_in("voice", {"answer": 50}, 0.2)
    assert [type(e) for e in sent(conv)] == [ev.ItemTruncate]   # no response.cancel: the server does it


def test_parallel_calls_run_together_and_one_response_follows_the_last_output():
    conv = fresh()
    started(conv)
    out = conv.server_event(done("resp_1", [call("c1", "get_time"), call("c2", "set_volume", '{"level": 30}')]), 0.1)
    runs = [a for a in out if isinstance(a, RunTool)]
    assert [(r.call_id, r.name) for r in runs] == [("c1", "get_time"), ("c2", "set_volume")]
    assert not conv.idle
    conv.tool_finished("c2", json.dumps({"volume": 30}), "ok", 0.2)
    assert [type(e) for e in sent(conv)] == [ev.ItemCreate]          # not yet: c1 still runs
    out = conv.tool_finished("c1", json.dumps({"time": "12:00"}), "ok", 0.3)
    events = sent(conv)
    assert [type(e) for e in events] == [ev.ItemCreate, ev.ResponseCreate]
    assert events[0].item.call_id == "c1"
    assert published(out, "tool_result")[0].data["outcome"] == "ok"


def test_a_reply_that_never_finishes_is_given_up_at_its_deadline():
    conv = fresh(reply_timeout_s=30.0)
    started(conv, now=10.0)
    conv.server_event(delta("resp_1", "answer"), 12.0)
    assert conv.tick(41.0) == []                       # 29 s without news: still waiting
    out = conv.tick(42.5)
    assert any(isinstance(a, StopPlayback) for a in out)
    assert published(out, "reply_finished") and published(out, "error")[0].data["code"] == "reply_timeout"
    assert isinstance(sent(conv)[-1], ev.ResponseCancel)
    conv.barge_in("reply_timeout", {"answer": 40}, 42.5)
    assert conv.idle


def test_a_turn_with_no_response_at_all_ends_at_the_deadline():
    conv = fresh(reply_timeout_s=30.0)
    conv.turn(Actions(commit=True, respond=True, speech_ended=True), 5.0)
    assert not conv.idle
    assert published(conv.tick(36.0), "reply_finished")
    assert conv.idle


def test_odd_sized_audio_is_played_without_its_half_sample():
    conv = fresh()
    started(conv)
    plays = [a for a in conv.server_event(delta("resp_1", "answer", bytes(4801)), 0.1) if isinstance(a, Play)]
    assert len(plays[0].pcm) == 4800


def test_audio_done_lets_the_tail_play_and_the_outbox_keeps_order():
    conv = fresh()
    started(conv)
    conv.server_event(delta("resp_1", "answer"), 0.1)
    out = conv.server_event(ev.AudioDone(response_id="resp_1", item_id="answer"), 0.2)
    assert any(isinstance(a, FinishPlayback) for a in out)
    conv.turn(Actions(send=[b"\0" * 960] * 3, speech_started=True), 0.3)
    conv.say("hello", 0.4)
    assert [type(e) for e in sent(conv)] == [ev.InputAudioAppend] * 3 + [ev.ItemCreate, ev.ResponseCreate]


def test_the_uplink_keeps_the_newest_audio_while_the_link_is_down():
    conv = fresh(max_queue_ms=200, frame_ms=20)
    conv.say("first", 0.0)
    conv.turn(Actions(send=[bytes([i]) * 960 for i in range(30)]), 0.1)
    events = sent(conv)
    audio = [e for e in events if isinstance(e, ev.InputAudioAppend)]
    assert len(audio) == 10 and audio[0].pcm[0] == 20            # the oldest 20 frames went
    assert isinstance(events[0], ev.ItemCreate)                    # control events are never dropped
    assert conv.counters()["dropped_uplink_frames"] == 20


def test_carry_over_replays_recent_turns_and_repairs_a_text_only_first_reply():
    conv = fresh()
    conv.server_event(ev.InputAudioCommitted(item_id="u1"), 0.0)
    conv.server_event(ev.InputTranscriptionCompleted(item_id="u1", content_index=0, transcript="go forward"), 0.1)
    started(conv)
    conv.server_event(ev.AudioTranscriptDone(response_id="resp_1", item_id="a1", transcript="Going forward."), 0.2)
    conv.end_session(lost=False, now=1.0)
    first = conv.begin_session(session_id="sess_2", fresh=False, now=1.0)
    assert [e.item.role for e in first if isinstance(e, ev.ItemCreate)] == ["user", "assistant"]
    sent(conv)
    conv.server_event(ev.ResponseCreated(response=Response(id="resp_2")), 2.0)
    text_only = Item(id="a2", role="assistant", content=[ContentPart(type="output_text", text="You said go.")])
    out = conv.server_event(done("resp_2", [text_only]), 2.1)
    assert published(out, "carry_over_fallback")
    events = sent(conv)
    assert [type(e) for e in events] == [ev.ItemDelete, ev.ItemDelete, ev.ResponseCreate]
    assert conv.counters()["text_only_fallbacks"] == 1


@pytest.mark.parametrize("cause", ["button", "stop_word"])
def test_a_tap_after_the_tools_answered_cancels_the_answer_still_to_come(cause):
    conv = fresh()
    started(conv)
    conv.server_event(delta("resp_1", "preamble"), 0.1)
    conv.server_event(done("resp_1", [spoken("preamble", "let me check"), call("c1", "get_time")]), 0.2)
    conv.tool_finished("c1", "{}", "ok", 0.3)             # the answer is asked for ...
    sent(conv)
    conv.barge_in(cause, {"preamble": 50}, 0.4)             # ... and the person taps (or says stop) first
    sent(conv)
    out = conv.server_event(ev.ResponseCreated(response=Response(id="resp_2")), 0.5)
    assert out == [] and isinstance(sent(conv)[-1], ev.ResponseCancel)
    assert conv.server_event(delta("resp_2", "answer"), 0.6) == []   # not played
    assert conv.idle


def test_a_turn_the_server_heard_but_has_not_committed_is_not_idle():
    """The device's own end of speech comes before the server's commit; a session swapped in
    between would lose the turn, so the conversation is busy until the commit (or a deadline)."""
    conv = fresh(reply_timeout_s=30.0)
    conv.turn(Actions(speech_started=True), 1.0)
    conv.server_event(ev.SpeechStarted(audio_start_ms=0, item_id="item_1"), 1.1)
    conv.turn(Actions(speech_ended=True), 3.0)          # the device's hangover is over
    assert not conv.idle                                 # ... but the server has not committed
    conv.server_event(ev.InputAudioCommitted(item_id="item_1", previous_item_id=None), 3.2)
    assert not conv.idle                                 # now the reply is awaited
    started(conv, now=3.4)
    conv.server_event(done("resp_1", [spoken("answer", "Hi.")]), 3.5)
    assert conv.idle


def test_speech_the_server_never_commits_stops_blocking_at_the_deadline():
    conv = fresh(reply_timeout_s=30.0)
    conv.server_event(ev.SpeechStarted(audio_start_ms=0, item_id="item_1"), 1.0)
    assert not conv.idle
    conv.tick(20.0)
    assert not conv.idle
    conv.tick(31.5)
    assert conv.idle


def test_a_typed_turn_written_into_a_link_that_died_is_sent_again():
    conv = fresh()
    conv.say("what time is it", 0.0)
    assert [type(e) for e in sent(conv)] == [ev.ItemCreate, ev.ResponseCreate]   # written ... into a dead link
    out = conv.end_session(lost=True, now=1.0)
    assert published(out, "say_resent")[0].data == {"turns": 1}
    conv.begin_session(session_id="sess_2", fresh=False, now=2.0)
    again = sent(conv)
    assert [type(e) for e in again] == [ev.ItemCreate, ev.ResponseCreate] and again[0].item.text == "what time is it"
    # once the server shows the item, a later loss does not send it a third time
    conv.server_event(ev.ConversationItemAdded(item=Item(id="i1", role="user", content=again[0].item.content)), 2.1)
    assert conv.end_session(lost=True, now=3.0) == [] and not conv.outbox


def test_a_typed_turn_still_queued_when_the_link_dies_is_not_doubled():
    conv = fresh()
    conv.say("hello", 0.0)                      # never left the outbox
    conv.end_session(lost=True, now=1.0)
    assert [type(e) for e in sent(conv)] == [ev.ItemCreate, ev.ResponseCreate]


def test_a_turn_cut_off_by_a_forced_rotation_is_answered_in_the_next_session():
    conv = fresh()
    conv.say("tell me about lighthouses", 0.0)
    conv.server_event(ev.ConversationItemAdded(item=Item(id="u1", role="user", content=[
        ContentPart(type="input_text", text="tell me about lighthouses")])), 0.1)
    started(conv, now=0.2)
    conv.server_event(delta("resp_1", "answer"), 0.3)
    sent(conv)
    conv.barge_in("rotation", {"answer": 40}, 0.4)          # the limit is near: the session is swapped
    conv.end_session(lost=False, now=0.5)
    first = conv.begin_session(session_id="sess_2", fresh=False, now=0.6)
    assert isinstance(first[-1], ev.ResponseCreate)           # the carried question gets its answer
    assert [e.item.text for e in first if isinstance(e, ev.ItemCreate)] == ["tell me about lighthouses"]
    assert not conv.idle


def test_a_rotation_between_turns_asks_for_nothing():
    conv = fresh()
    conv.say("hi", 0.0)
    conv.server_event(ev.ConversationItemAdded(item=Item(id="u1", role="user", content=[
        ContentPart(type="input_text", text="hi")])), 0.1)
    started(conv, now=0.2)
    conv.server_event(done("resp_1", [spoken("a1", "Hello.")]), 0.3)
    conv.end_session(lost=False, now=1.0)
    first = conv.begin_session(session_id="sess_2", fresh=False, now=1.1)
    assert not any(isinstance(e, ev.ResponseCreate) for e in first)


def test_a_forced_rotation_does_not_cancel_the_answers_that_follow():
    """Found by the soak: a rotation cutting off a turn that awaited its reply marked the next
    response as unwanted, and every reply after it was cancelled on arrival."""
    conv = fresh()
    conv.say("first", 0.0)
    sent(conv)
    conv.barge_in("rotation", {}, 0.5)
    conv.end_session(lost=False, now=0.6)
    conv.begin_session(session_id="sess_2", fresh=False, now=0.7)
    sent(conv)
    out = started(conv, "resp_2", now=1.0)
    assert published(out, "response_started")
    assert not any(isinstance(e, ev.ResponseCancel) for e in sent(conv))


def test_a_spoken_turn_cut_off_before_its_transcript_is_heard_again_as_audio():
    """A forced rotation can come after the server committed a spoken turn but before its
    transcript: the new session gets the turn's audio again, and answers it."""
    for server_vad in (True, False):
        conv = fresh(server_interrupts=server_vad)
        frames = [bytes([i]) * 960 for i in range(5)]
        conv.turn(Actions(send=frames, speech_started=True), 0.0)
        conv.turn(Actions(speech_ended=True, commit=not server_vad, respond=not server_vad), 0.2)
        conv.server_event(ev.InputAudioCommitted(item_id="u1"), 0.3)
        sent(conv)
        conv.end_session(lost=False, now=0.5)          # no response yet, no transcript yet
        first = conv.begin_session(session_id="sess_2", fresh=False, now=0.6)
        audio = [e for e in first if isinstance(e, ev.InputAudioAppend)]
        assert [a.pcm for a in audio] == frames
        asks = [type(e) for e in first if not isinstance(e, ev.InputAudioAppend)]
        assert asks == ([] if server_vad else [ev.InputAudioCommit, ev.ResponseCreate])


def test_a_turn_the_servers_vad_does_not_end_is_committed_by_the_device():
    """server_vad: the device's VAD ended the turn and sent the server's silence, but room noise
    above the server's threshold keeps its VAD in speech: the turn would wait for the next
    sound in the room. The device commits it and asks for the reply."""
    conv = fresh()
    conv.turn(Actions(speech_started=True, send=[PCM_100MS]), 10.0)
    conv.server_event(ev.SpeechStarted(audio_start_ms=0, item_id="item_1"), 10.1)
    conv.turn(Actions(speech_ended=True, send=[PCM_100MS]), 13.0)
    sent(conv)
    conv.tick(14.0)
    assert sent(conv) == []                                   # the server may still end it
    conv.tick(14.6)
    assert [type(e) for e in sent(conv)] == [ev.InputAudioCommit, ev.ResponseCreate]
    assert conv.stats.forced_commits == 1
    conv.tick(16.0)
    assert sent(conv) == []                                   # once


def test_a_turn_the_server_ends_itself_is_not_committed_again():
    conv = fresh()
    conv.turn(Actions(speech_started=True, send=[PCM_100MS]), 10.0)
    conv.server_event(ev.SpeechStarted(audio_start_ms=0, item_id="item_1"), 10.1)
    conv.turn(Actions(speech_ended=True, send=[PCM_100MS]), 13.0)
    conv.server_event(ev.InputAudioCommitted(item_id="item_1", previous_item_id=None), 13.2)
    sent(conv)
    conv.tick(20.0)
    assert not any(isinstance(e, ev.InputAudioCommit) for e in sent(conv))
    # nor when the person starts again before the grace is over
    conv.turn(Actions(speech_started=True, send=[PCM_100MS]), 30.0)
    conv.server_event(ev.SpeechStarted(audio_start_ms=0, item_id="item_2"), 30.1)
    conv.turn(Actions(speech_ended=True, send=[PCM_100MS]), 31.0)
    conv.turn(Actions(speech_started=True, send=[PCM_100MS]), 31.5)
    sent(conv)
    conv.tick(33.0)
    assert not any(isinstance(e, ev.InputAudioCommit) for e in sent(conv))
    assert conv.stats.forced_commits == 0


def test_semantic_vad_is_left_to_take_its_time():
    """semantic_vad waits for the person to finish a thought, by design: no commit from the device."""
    import dataclasses

    from device.realtime.session import TurnDetection
    conv = fresh()
    conv.settings = dataclasses.replace(conv.settings, turn_detection=TurnDetection(type="semantic_vad"))
    conv.turn(Actions(speech_started=True, send=[PCM_100MS]), 10.0)
    conv.server_event(ev.SpeechStarted(audio_start_ms=0, item_id="item_1"), 10.1)
    conv.turn(Actions(speech_ended=True, send=[PCM_100MS]), 13.0)
    sent(conv)
    conv.tick(20.0)
    assert not any(isinstance(e, ev.InputAudioCommit) for e in sent(conv))
