"""``pivoice status | events | say | mute | unmute | talk | new-conversation``: talking to the
running daemon over its control socket."""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Iterable
from typing import Any

from .. import control
from ..audio import miclevel
from ..redact import scrub, scrub_url

EXIT_NOT_RUNNING = 3


def _fmt_age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def _local(wall: Any, fmt: str) -> str:
    try:
        return time.strftime(fmt, time.localtime(wall)) if wall else ""
    except (TypeError, ValueError, OverflowError, OSError):
        return ""


def _link_words(s: dict[str, Any]) -> dict[str, str]:
    return {"up": "connected", "backoff": f"reconnecting in {s.get('next_retry_in_s')} s",
            "error": "stopped: needs a fix (see last error)", "connecting": "connecting",
            "standby": "standby: connects when spoken to"}


def render_status(s: dict[str, Any]) -> str:
    error = s.get("last_error")
    when = _local(s.get("last_error_at"), "%Y-%m-%d %H:%M:%S")
    rows = [
        ("state", f"{s.get('state')} (for {_fmt_age(s.get('state_for_s'))})"
                  + (", microphone muted" if s.get("muted") else "")),
        ("connection", _link_words(s).get(str(s.get("link")), s.get("link"))),
        ("api", _api_line(s)),
        ("session", f"{s.get('session_id') or '-'}, age {_fmt_age(s.get('session_age_s'))}"),
        ("rotation", f"in {_fmt_age(s.get('rotation_in_s'))} (limit in {_fmt_age(s.get('deadline_in_s'))})"
         if s.get("rotation_in_s") is not None else "-"),
        ("endpoint", f"{s.get('endpoint')} model {s.get('model')} ({s.get('dialect')})"),
        ("turn mode", s.get("turn_mode")),
        ("audio", f"microphone {s.get('microphone')}; speaker {s.get('speaker')}"),
        ("mic level", miclevel.describe(s["mic_level"]) if "mic_level" in s else "-"),
        ("echo", _echo_line(s.get("echo_canceller"))),
        ("counters", f"turns {s.get('turns')}, replies {s.get('replies')}, reconnects {s.get('reconnects')}, "
                     f"rotations {s.get('rotations')}, underruns {s.get('underruns')}, overflows {s.get('overflows')}, "
                     f"barge-ins {s.get('barge_ins')} ({s.get('voice_barge_ins', 0)} heard over the reply, "
                     f"{s.get('talk_over_dismissed', 0)} dismissed: nobody went on; "
                     f"speaker hushed {s.get('speaker_hushes', 0)})"),
        ("api key", s.get("api_key")),
        ("uptime", _fmt_age(s.get("uptime_s"))),
        ("metrics", s.get("metrics") or "-"),
        ("last error", f"{error} ({when})" if error else "none"),
    ]
    if s.get("audio_problem"):
        rows.append(("audio", s["audio_problem"]))
    if s.get("gpio_problem"):
        rows.append(("gpio", s["gpio_problem"]))
    return "\n".join(f"{k:<11} {v}" for k, v in rows)


def _echo_line(aec: Any) -> str:
    """The echo canceller: what it has done, or why it does nothing now."""
    if not isinstance(aec, dict):
        return "no canceller: the echo guard decides while the device speaks ([audio] echo_cancel, echo_guard)"
    kind = aec.get("kind", "?")
    if aec.get("failed"):
        return (f"{kind} FAILED ({aec['failed']}): the echo guard decides while the device speaks, until the "
                "daemon is restarted (pivoice doctor checks the canceller)")
    if aec.get("standing_in"):
        return f"{kind}, paused: the microphone is missing, and the silence in its place has no echo"
    e_in, e_out = aec.get("energy_in") or 0.0, aec.get("energy_out") or 0.0
    taken = f", {10 * math.log10(e_in / e_out):.0f} dB taken off the microphone" if e_in > 0 and e_out > 0 else ""
    return f"{kind}: {aec.get('frames', 0)} frames cleaned ({aec.get('skipped', 0)} skipped: nothing played){taken}"


def _api_line(s: dict[str, Any]) -> str:
    if s.get("api") != "live":
        return "realtime (always connected)"
    idle = s.get("idle_close_in_s")
    return (f"live (GPT-Live, connected on demand): {s.get('billed_s')} s billed, {s.get('idle_closes')} idle "
            f"close(s)" + (f", closes in {_fmt_age(idle)} without speech" if idle is not None else ""))


def safe_status(reply: dict[str, Any]) -> dict[str, Any]:
    """The status as it may be shown: valid JSON (non-finite numbers become null) and nothing
    shaped like a key, not even in the endpoint URL's query."""
    def clean(value: Any, key: str = "") -> Any:
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if isinstance(value, str):
            return scrub_url(value) if key == "endpoint" else scrub(value)
        if isinstance(value, dict):
            return {str(k): clean(v, str(k)) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [clean(v) for v in value]
        return value
    cleaned: dict[str, Any] = clean(reply)
    return cleaned


def status(socket_path: str, *, as_json: bool) -> int:
    reply = safe_status(control.request(socket_path, {"cmd": "status"}))
    if reply.get("ok") is False or "state" not in reply:
        print(f"pivoice: the daemon did not give its status: {reply.get('error', 'no state in the reply')}")
        return 1
    if as_json:
        print(json.dumps(reply, indent=2, sort_keys=True, allow_nan=False))
    else:
        print(render_status(reply))
    return 0


def render_event(event: dict[str, Any]) -> str:
    at = time.strftime("%H:%M:%S", time.localtime(event.get("wall") or time.time()))
    kind = event.pop("kind")
    event.pop("at", None)
    event.pop("wall", None)
    if kind == "state":
        detail = f"{event.get('previous')} -> {event.get('state')} ({event.get('cause')})"
        extra = {k: v for k, v in event.items() if k not in ("previous", "state", "cause")}
        if extra:
            detail += " " + " ".join(f"{k}={v}" for k, v in extra.items())
    else:
        detail = " ".join(f"{k}={json.dumps(v) if isinstance(v, str) and ' ' in v else v}" for k, v in event.items())
    return f"{at}  {kind:<12} {detail}"


def events(socket_path: str, *, as_json: bool, kinds: set[str] | None, count: int | None) -> int:
    seen = 0
    try:
        # Acknowledged: a stopped daemon is reported in seconds, a busy one refuses with a message.
        stream = control.EventStream(socket_path)
        # Said once subscribed (on stderr, beside --json): what happens from here on is shown.
        print("pivoice: following the daemon's events (Ctrl-C to stop)", file=sys.stderr, flush=True)
        for event in stream:
            event = safe_status(event)
            if "kind" not in event or (kinds and event["kind"] not in kinds):
                continue
            print(json.dumps(event, allow_nan=False) if as_json else render_event(event), flush=True)
            seen += 1
            if count is not None and seen >= count:
                return 0
    except KeyboardInterrupt:
        return 0
    print("pivoice: the daemon closed the event stream (stopped?)", flush=True)
    return EXIT_NOT_RUNNING


def say(socket_path: str, text: str, *, wait: bool, timeout_s: float) -> int:
    if not wait:
        return _say_reply(control.request(socket_path, {"cmd": "say", "text": text}), "queued")
    # Subscribed (and acknowledged) before the text is sent: a fast reply cannot be missed.
    with control.EventStream(socket_path, timeout_s=timeout_s) as stream:
        failed = _say_reply(control.request(socket_path, {"cmd": "say", "text": text}), None)
        if failed:
            return failed
        deadline = time.monotonic() + timeout_s
        try:
            return _follow_reply(stream, deadline)
        except TimeoutError:
            print("pivoice: no reply in time")
            return 1


def _say_reply(reply: dict[str, Any], done: str | None) -> int:
    if not reply.get("ok"):
        print(f"pivoice: {reply.get('error')}")
        return 1
    if done:
        print(done)
    return 0


def _follow_reply(stream: Iterable[dict[str, Any]], deadline: float) -> int:
    for event in stream:
        event = safe_status(event)
        if event.get("kind") == "reply" and event.get("preamble"):
            print(f"device: {event['preamble']}", flush=True)     # a reasoning model's spoken preamble
        if event.get("kind") == "reply" and event.get("text"):
            print(f"device: {event['text']}" + ("" if event.get("audio") else " (text only)"), flush=True)
        finished = event.get("state") in ("idle", "muted") and event.get("cause") == "reply_finished"
        if event.get("kind") == "state" and finished:
            return 0
        if event.get("kind") == "error" and event.get("fatal"):
            print(f"pivoice: {event.get('error')}")
            return 1
        if time.monotonic() > deadline:
            print("pivoice: no reply in time")
            return 1
    return EXIT_NOT_RUNNING


def command(socket_path: str, cmd: str, args: dict[str, Any]) -> int:
    """One control command (mute, talk, new_conversation); says what the device did."""
    reply = control.request(socket_path, {"cmd": cmd, **args})
    if not reply.get("ok", True) or "error" in reply:
        print(f"pivoice: {reply.get('error', 'the daemon refused')}")
        return 1
    if "muted" in reply:
        print("microphone muted" if reply["muted"] else "microphone on")
    elif "talking" in reply:
        print("talking: the microphone is sent (pivoice talk --off ends the turn)" if reply["talking"]
              else "talk ended: the device answers")
    else:
        print("new conversation: the next session starts without the old turns")
    return 0
