"""The figures of the soak (bench/soak_bench.py): what happened to every turn, resident memory
after warm-up and its slope, the counters that could grow."""

from __future__ import annotations

import statistics
from collections import Counter
from typing import Any


def outcomes(run: Any) -> dict[str, Counter]:
    out: dict[str, Counter] = {"clip": Counter(), "say": Counter()}
    for turn in run.turns:
        out[turn["kind"]][turn.get("outcome", "unfinished")] += 1
    return out


def memory(run: Any, warm_fraction: float = 0.2) -> dict[str, float] | None:
    """RSS after warm-up: first and last third's means (MB) and the slope (KB per 100 rotations)."""
    samples = run.samples[int(len(run.samples) * warm_fraction):]
    if len(samples) < 6:
        return None
    third = len(samples) // 3
    first = statistics.fmean(s["rss_kb"] for s in samples[:third]) / 1024
    last = statistics.fmean(s["rss_kb"] for s in samples[-third:]) / 1024
    xs, ys = [s["rotations"] for s in samples], [s["rss_kb"] for s in samples]
    slope = statistics.linear_regression(xs, ys).slope * 100 if len(set(xs)) > 1 else 0.0
    return {"first_mb": first, "last_mb": last, "delta_mb": last - first, "slope_kb": slope,
            "start_mb": run.samples[0]["rss_kb"] / 1024, "peak_mb": max(s["rss_kb"] for s in run.samples) / 1024,
            "rotations_from": xs[0], "rotations_to": xs[-1]}


def print_run(run: Any, server: dict[str, Any]) -> int:
    """Print one run's figures; return the number of lost turns."""
    final, conv = run.final, run.app.conversation.stats
    got = outcomes(run)
    lost = got["clip"]["lost"] + got["say"]["lost"] + got["clip"]["unfinished"] + got["say"]["unfinished"]
    clips, says = sum(got["clip"].values()), sum(got["say"].values())
    heard_clips = sum(1 for t in server["user_audio"] if t)
    heard_says = sum(1 for t in server["user_text"] if "soak turn" in t)
    print(f"  {run.elapsed:.0f} s of wall time = {run.elapsed * run.speed / 60:.0f} min simulated; "
          f"sessions {final['connects']}, rotations {final['rotations']}, sessions ended by the server "
          f"{final['expired']}, link drops {run.drops}, reconnects {final['reconnects']}")
    causes = Counter(t.get("cause") for t in run.turns if t.get("outcome") == "lost")
    print(f"  turns spoken {clips + says} ({clips} clips through the mic, {says} say); lost {lost} {dict(causes)}; "
          f"outcomes: clips {dict(got['clip'])}, say {dict(got['say'])}")
    print(f"  heard by the server: {heard_clips} audio turns with a transcript (of {clips} clips), "
          f"{heard_says} typed turns (of {says}); device saw {run.seen['heard']} transcripts, "
          f"{conv.turns} committed audio turns")
    print(f"  replies: device {conv.replies} (spoken {sum(1 for t in run.turns if t.get('answered'))} answers "
          f"matched to their turn), server {server['responses']} responses ({server['cancelled']} cancelled), "
          f"{len(server['assistant_audio'])} with audio, {server['assistant_text_only']} text only; "
          f"barge-ins {conv.barge_ins}, truncates {conv.truncates}, text-only fallbacks {conv.text_only_fallbacks}, "
          f"reply timeouts {conv.reply_timeouts}; say refused while reconnecting {run.say_refused}")
    print(f"  errors on the bus: {sum(run.errors.values())} {dict(run.errors.most_common(6))}; "
          f"bad frames {final['bad_frames']}; simulator child RSS {server['rss_kb'] / 1024:.1f} MB")
    real = server["stt_real_s"]
    print(f"  server speech-to-text: {server['stt_matched']} segments held a clip whole (given its transcript "
          f"{server['stt_refs']}), {server['stt_real']} transcribed for real"
          f"{f' (median {statistics.median(real):.2f} s real)' if real else ''}; simulator log: "
          f"{sum(server['log'].values())} errors {dict(server['log'].most_common(3))}")
    for turn in run.turns:
        if turn.get("outcome") == "lost":
            coupling = turn.get("coupling_db")
            over = "" if coupling is None else f"spoken over a reply whose learned echo coupling was {coupling:.1f} dB; "
            print(f"  LOST turn {turn['n']} ({turn['clip'] or 'say'}; {turn['cause']}) at {turn['at_s']:.0f} s simulated; the session "
                  f"was to rotate in {turn['rotate_in_s']} s and end in {turn['deadline_in_s']} s (real); "
                  f"heard {turn['heard']}; "
                  f"{over}"
                  f"what the device published after it: {', '.join(turn['trace'][:40])}")
    over = [(t["n"], round(t["coupling_db"], 1), t["outcome"]) for t in run.turns if t.get("coupling_db") is not None]
    if over:
        print(f"  turns spoken over a reply (turn, learned echo coupling dB, outcome): {over}")
    return lost


def print_memory(run: Any, bound_mb: float) -> bool:
    mem = memory(run)
    if mem is None:
        print("  memory: too few samples")
        return False
    flat = abs(mem["delta_mb"]) <= bound_mb
    print(f"  resident memory: {mem['start_mb']:.1f} MB at the start, peak {mem['peak_mb']:.1f} MB; after warm-up "
          f"(rotations {mem['rotations_from']}..{mem['rotations_to']}, {len(run.samples)} samples) first third "
          f"{mem['first_mb']:.1f} MB, last third {mem['last_mb']:.1f} MB: {mem['delta_mb']:+.2f} MB "
          f"(bound ±{bound_mb:g}); slope {mem['slope_kb']:+.0f} KB per 100 rotations -> "
          f"{'flat' if flat else 'GROWING'}")
    warm = run.samples[int(len(run.samples) * 0.2)]
    keys = [k for k in warm if k not in ("t", "rss_kb", "rotations", "sessions")]
    line = ", ".join(f"{k} {warm[k]}/{max(s[k] for s in run.samples)}/{run.final[k]}" for k in keys)
    print(f"  counters that could grow (after warm-up / max / end): {line}")
    return flat


def print_tracemalloc(first: Any, last: Any) -> None:
    print("  tracemalloc, top growth sites over the soak after warm-up:")
    for stat in last.compare_to(first, "lineno")[:8]:
        print(f"    {stat.size_diff / 1024:+8.1f} KB {stat.count_diff:+6d} blocks  {stat.traceback[0]}")
