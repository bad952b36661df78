"""The GPT-Live conversation core, sans-I/O: frames, server events and the time in, actions out."""

from __future__ import annotations

from device.audio.turns import Actions
from device.conversation import FinishPlayback, Play, Publish, RunTool, StopPlayback
from device.live import events as ev
from device.live.conversation import TYPED_TURN, CloseSession, LiveConversation, LiveSettings, OpenSession
from device.live.models import DelegationInfo, FunctionTool

FRAME = b"\x01\x00" * 480   # 20 ms at 24 kHz


def kinds(actions: list) -> list[str]:
    return [a.kind if isinstance(a, Publish) else type(a).__name__ for a in actions]


def opened(**kw) -> LiveConversation:
    conv = LiveConversation(**kw)
    conv.request(0.0)
    conv.begin_session(session_id="sess_1", fresh=False, now=0.0)
    return conv


def delta(ms: int = 100) -> ev.OutputAudioDelta:
    return ev.OutputAudioDelta.from_audio(b"\x00\x01" * 24 * ms)


def test_before_a_session_only_the_preroll_is_kept_and_speech_asks_for_one():
    conv = LiveConversation(preroll_ms=100)
    for _ in range(20):
        assert conv.turn(Actions(send=[FRAME]), 0.0) == []
    assert not conv.outbox
    out = conv.turn(Actions(send=[FRAME], speech_started=True), 1.0)
    assert kinds(out) == ["speech_started", "OpenSession"] and out[1] == OpenSession("speech")
    assert conv.request(1.0) and not conv.request(1.0)
    assert conv.outbox.audio_frames == 5                      # the last 100 ms, the onset among them
    conv.turn(Actions(send=[FRAME]), 1.02)
    assert conv.outbox.audio_frames == 6                      # from now on everything goes up
    # Speech while one is open or opening asks again: a no-op then, but not while one closes.
    assert kinds(conv.turn(Actions(send=[FRAME], speech_started=True), 1.04)) == ["speech_started", "OpenSession"]
    assert not LiveConversation(open_on_speech=False).turn(Actions(speech_started=True), 0.0)[1:]


def test_a_stretch_of_speech_plays_finishes_after_the_gap_and_drains_into_reply_finished():
    conv = opened(end_gap_s=0.5)
    first = conv.server_event(delta(), 1.0)
    assert kinds(first) == ["first_delta", "Play"]
    item = first[1].item_id
    assert [a.item_id for a in conv.server_event(delta(), 1.2) if isinstance(a, Play)] == [item]
    assert conv.tick(1.6) == [] and not conv.idle
    assert conv.tick(1.8) == [FinishPlayback()]
    conv.server_event(ev.OutputTranscriptDelta(delta="Hello.", start_ms=0, end_ms=200), 1.3)
    done = conv.playback_drained(2.5)
    assert kinds(done) == ["reply", "reply_finished"] and conv.idle     # its words first
    assert done[0].data["text"] == "Hello." and conv.stats.replies == 1
    again = conv.server_event(delta(), 3.0)
    assert kinds(again) == ["first_delta", "Play"] and again[1].item_id != item


def test_talked_over_the_device_flushes_only_once_the_model_stopped():
    conv = opened(talk_over_gap_s=0.3)
    conv.server_event(delta(), 1.0)
    conv.turn(Actions(send=[FRAME], speech_started=True), 1.1)
    conv.server_event(delta(), 1.3)                           # the model goes on (a backchannel?)
    assert StopPlayback("voice") not in conv.tick(1.5)
    assert conv.tick(1.6) == [StopPlayback("voice")]           # 0.3 s without its audio: it yielded
    out = conv.barge_in("voice", {}, 1.6)
    assert kinds(out) == ["barge_in"]                          # the person is talking: no reply_finished


def test_the_button_flushes_and_the_rest_of_that_stretch_is_not_played():
    conv = opened(end_gap_s=0.5)
    conv.server_event(delta(), 1.0)
    assert kinds(conv.barge_in("button", {}, 1.1)) == ["barge_in", "reply_finished"]
    assert conv.server_event(delta(), 1.2) == []               # the model still talks: dropped
    assert conv.tick(1.8) == []
    assert kinds(conv.server_event(delta(), 2.0)) == ["first_delta", "Play"]


def test_the_idle_close_waits_for_speech_playback_and_delegated_work():
    conv = opened(idle_close_s=10)
    conv.turn(Actions(speech_started=True), 5.0)
    assert CloseSession("idle") not in conv.tick(30.0)         # a long question is not silence
    conv.turn(Actions(speech_ended=True), 31.0)
    conv.server_event(delta(), 32.0)
    assert CloseSession("idle") not in conv.tick(50.0)         # still playing
    conv.tick(50.0)
    conv.playback_drained(51.0)
    assert CloseSession("idle") not in conv.tick(60.0)
    assert CloseSession("idle") in conv.tick(61.0) and conv.stats.idle_closes == 1


def test_mute_is_the_apis_own_and_a_new_session_starts_muted():
    conv = opened()
    conv.set_muted(True)
    conv.set_muted(True)
    assert [type(e) for e in conv.outbox] == [ev.InputAudioMute]
    assert conv.begin_session(session_id="sess_2", fresh=False, now=1.0) == [ev.InputAudioMute()]
    conv.set_muted(False)
    assert isinstance(list(conv.outbox)[-1], ev.InputAudioUnmute)


def test_a_delegated_call_runs_on_the_device_and_its_output_continues_the_response():
    conv = opened()
    created = ev.DelegationCreated(delegation=DelegationInfo(id="item_1", target="responses", response_id="resp_1"))
    assert kinds(conv.server_event(created, 1.0)) == ["response_started"]
    call = {"type": "function_call", "call_id": "call_1", "name": "set_volume", "arguments": '{"level": 30}'}
    out = conv.server_event(ev.ResponseEvent(delegation_id="item_1", event={
        "type": "response.output_item.done", "item": call}), 1.1)
    assert out[-1] == RunTool("call_1", "set_volume", '{"level": 30}') and not conv.idle
    conv.server_event(delta(), 1.2)                                      # "one moment"
    assert conv.tick(2.0) == [FinishPlayback()]
    assert kinds(conv.playback_drained(2.1)) == ["delegation_running"]   # thinking, not idle
    assert kinds(conv.tool_finished("call_1", '{"volume": 30}', "ok", 2.2)) == ["tool_result"]
    sent = list(conv.outbox)
    assert sent[0].item == {"type": "function_call_output", "call_id": "call_1", "output": '{"volume": 30}'}
    assert isinstance(sent[1], ev.ResponseCreate)
    done = conv.server_event(ev.ResponseEvent(delegation_id="item_1", event={
        "type": "response.completed", "response": {"id": "resp_1"}}), 3.0)
    assert kinds(done) == [] and conv.idle and conv.tick(4.0) == []    # its result is usually spoken
    assert kinds(conv.tick(6.1)) == ["reply_finished"]                 # but not this time


def test_no_word_is_lost_when_a_session_ends_and_the_next_one_is_told():
    conv = opened()
    conv.server_event(ev.InputTranscriptDelta(delta="go forward", start_ms=100, end_ms=900), 1.0)
    conv.server_event(ev.InputTranscriptDelta(delta=" ten meters", start_ms=900, end_ms=1500), 1.1)
    conv.turn(Actions(send=[FRAME] * 3), 1.2)
    conv.set_muted(True)
    out = conv.end_session(lost=False, now=2.0, reopen=True)          # expired mid-turn
    assert [type(e) for e in conv.outbox] == [ev.InputAudioAppend] * 3   # not the old session's mute
    assert [a.data["text"] for a in out if a.kind == "heard"] == ["go forward ten meters"]
    assert conv.outbox.audio_frames == 3                             # the next session gets them
    config = conv.session_config(LiveSettings(tools=(FunctionTool(name="set_volume"),)), fresh=False)
    assert [m.plain for m in config.input or []] == ["go forward ten meters"]
    assert config.delegation is not None and config.delegation.type == "responses"
    conv.end_session(lost=False, now=3.0)                           # idle close: nothing queued survives
    assert not conv.outbox and not conv.requested
    assert conv.session_config(LiveSettings(), fresh=True).input is None


def test_say_is_a_typed_turn_remembered_once_its_session_has_it():
    conv = LiveConversation()
    out = conv.say("What did I say before?", 1.0)
    assert out[1] == OpenSession("say")
    thinking = conv.outbox.peek()
    assert isinstance(thinking, ev.ThinkingAppend) and thinking.delegation_id is None
    assert thinking.content == TYPED_TURN + "What did I say before?"
    assert conv.session_config(LiveSettings(), fresh=False).input is None   # not twice
    conv.request(1.0)
    conv.begin_session(session_id="sess_1", fresh=False, now=1.0)
    conv.tick(1.1)
    assert [m.plain for m in conv.memory.history()] == ["What did I say before?"]
