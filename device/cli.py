"""The ``pivoice`` command. Each subcommand lives in its own module; this only dispatches.

Exit codes: 0 success; 1 a check failed (doctor FAIL, no microphone signal, no reply) or an
unexpected failure (a one-line message; -vv logs the traceback); 2 a usage or configuration
error (a bad request argument included); 3 the daemon is not running, not reachable (socket
path, permission) or accepted the connection but did not answer in time (stopped or hung).
The CLI never prints a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .errors import PivoiceError

if TYPE_CHECKING:
    from .config import Config

    SubParsers = argparse._SubParsersAction[argparse.ArgumentParser]


CONFIG_HELP = "config file (default $PIVOICE_CONFIG or /etc/pivoice/config.toml)"


def _simulator(args: argparse.Namespace) -> int:
    from .realtime.dialect import Dialect
    from .simulator.server import SimulatorOptions, serve_forever

    keys = frozenset(k for k in (args.api_key or os.environ.get("PIVOICE_SIMULATOR_KEYS", "")).split(",") if k)
    if args.api == "live":
        return _live_simulator(args, keys)
    options = SimulatorOptions(dialect=Dialect.parse(args.dialect, key="--dialect"),
                               session_limit_s=args.session_limit, api_keys=keys, speedup=args.speedup,
                               quirks=not args.no_quirks,
                               http_port=(args.http_port if args.http_port is not None
                                          else (args.port + 1 if args.port else 0)))
    try:
        asyncio.run(serve_forever(options, args.host, args.port))
    except KeyboardInterrupt:
        pass
    return 0


def _token_server(args: argparse.Namespace) -> int:
    from pathlib import Path

    from . import config as cfg
    from .tokenserver import TokenServerOptions, add_device, revoke_device, serve_forever

    tokens = Path(args.tokens)
    if args.add:
        print(f"{args.add} {add_device(tokens, args.add)}")
        print(f"(added to {tokens}; put the token in the device's PIVOICE_DEVICE_TOKEN or its "
              "pivoice_device_token credential)", file=sys.stderr)
        return 0
    if args.revoke:
        if not revoke_device(tokens, args.revoke):
            print(f"pivoice: no device {args.revoke!r} in {tokens}", file=sys.stderr)
            return 1
        return 0
    options = TokenServerOptions(tokens_file=tokens, upstream=args.upstream, model=args.model,
                                 expires_s=args.expires, api_key=cfg.api_key())
    try:
        asyncio.run(serve_forever(options, args.host, args.port))
    except KeyboardInterrupt:
        pass
    return 0


def _live_simulator(args: argparse.Namespace, keys: frozenset[str]) -> int:
    from .simulator.live_server import serve_forever
    from .simulator.live_session import LiveSimOptions

    options = LiveSimOptions(session_limit_s=args.session_limit, api_keys=keys, speedup=args.speedup,
                             bad_key=args.bad_key, usage_interval_s=args.usage_interval)
    try:
        asyncio.run(serve_forever(options, args.host, args.port))
    except KeyboardInterrupt:
        pass
    return 0


def _token_server_parser(sub: SubParsers) -> None:
    from .tokenserver import DEFAULT_TOKENS_FILE, DEFAULT_UPSTREAM

    p = sub.add_parser("token-server", help="hand devices short-lived Realtime secrets (run on a home server)")
    p.add_argument("--tokens", default=str(DEFAULT_TOKENS_FILE), metavar="PATH",
                   help=f"device tokens file, one `NAME TOKEN` a line, mode 0600 (default {DEFAULT_TOKENS_FILE})")
    p.add_argument("--host", default="0.0.0.0", help="address to listen on (default 0.0.0.0)")
    p.add_argument("--port", type=int, default=8788, help="TCP port (default 8788)")
    p.add_argument("--upstream", default=DEFAULT_UPSTREAM, metavar="URL",
                   help=f"OpenAI API base that mints the secrets (default {DEFAULT_UPSTREAM})")
    p.add_argument("--model", default="gpt-realtime-2", help="model baked into each secret (default gpt-realtime-2)")
    p.add_argument("--expires", type=int, default=600, metavar="SECONDS",
                   help="how long a secret may start sessions, 10-7200 (default 600)")
    p.add_argument("--add", metavar="NAME", help="add a device with a new random token, print it, and exit")
    p.add_argument("--revoke", metavar="NAME", help="remove a device's token and exit")
    p.set_defaults(func=_token_server)


def _demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    try:
        if args.api == "live":
            from .demo_live import run_live_demo

            return asyncio.run(run_live_demo(out_wav=args.out, speedup=args.speedup, speaker=args.speaker))
        return asyncio.run(run_demo(out_wav=args.out, speedup=args.speedup, speaker=args.speaker))
    except KeyboardInterrupt:  # Ctrl-C before the device was up (after, the demo winds down itself)
        print("pivoice demo: interrupted", file=sys.stderr)
        return 130


def _run(args: argparse.Namespace) -> int:
    from .daemon import run

    return run(args.config, verbose=args.verbose)


def _load(args: argparse.Namespace) -> Config:
    from . import config as cfg

    return cfg.load(args.config)


def _socket(args: argparse.Namespace) -> str:
    if args.socket:
        return str(args.socket)
    from . import config as cfg

    try:
        return cfg.load(args.config).control.socket
    except PivoiceError:
        return cfg.ControlConfig.socket


def _status(args: argparse.Namespace) -> int:
    from .diag import daemon

    return daemon.status(_socket(args), as_json=args.json)


def _events(args: argparse.Namespace) -> int:
    from .diag import daemon

    kinds = set(args.kinds.split(",")) if args.kinds else None
    return daemon.events(_socket(args), as_json=args.json, kinds=kinds, count=args.count)


def _say(args: argparse.Namespace) -> int:
    from .diag import daemon

    return daemon.say(_socket(args), " ".join(args.text), wait=not args.no_wait, timeout_s=args.timeout)


def _control(cmd: str, **fixed: Any) -> Callable[[argparse.Namespace], int]:
    def handler(args: argparse.Namespace) -> int:
        from .diag import daemon

        extra = {"on": not args.off} if cmd == "talk" else {}
        return daemon.command(_socket(args), cmd, {**fixed, **extra})
    return handler


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("pivoice")
    except PackageNotFoundError:
        return "unknown (not installed as a package)"


def _devices(args: argparse.Namespace) -> int:
    from .diag import audio

    return audio.devices(_load(args), as_json=args.json)


def _mic_test(args: argparse.Namespace) -> int:
    from .diag import audio

    return audio.mic_test(_load(args), seconds=args.seconds, device=args.device, save=args.save, as_json=args.json,
                          echo=args.echo)


def _speaker_test(args: argparse.Namespace) -> int:
    from .diag import audio

    return audio.speaker_test(_load(args), device=args.device, tone_hz=args.tone, phrase=args.phrase,
                              volume=args.volume, seconds=args.seconds)


def _leds(args: argparse.Namespace) -> int:
    from .diag import gpio

    return gpio.leds(_load(args), seconds=args.seconds)


def _button_test(args: argparse.Namespace) -> int:
    from .diag import gpio

    return gpio.button_test(_load(args), seconds=args.seconds)


def _doctor(args: argparse.Namespace) -> int:
    from .diag import doctor

    return doctor.doctor(args.config, args.socket, as_json=args.json)


def _logs(args: argparse.Namespace) -> int:
    from .diag import logs

    return logs.logs(follow=args.follow, lines=args.lines, since=args.since, priority=args.priority, as_json=args.json)


def _diagnostics(sub: SubParsers) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", metavar="PATH", help=CONFIG_HELP)
    common.add_argument("--socket", metavar="PATH", help="the daemon's control socket (default from the config)")
    as_json = argparse.ArgumentParser(add_help=False)
    as_json.add_argument("--json", action="store_true", help="machine-readable output")

    p = sub.add_parser("status", parents=[common, as_json],
                       help="the running daemon: state, session, counters, last error")
    p.set_defaults(func=_status)
    p = sub.add_parser("events", parents=[common, as_json], help="the daemon's live event stream")
    p.add_argument("--kinds", metavar="K1,K2", help="only these kinds (state, reply, heard, error, tool, session, ...)")
    p.add_argument("--count", type=int, metavar="N", help="stop after N events")
    p.set_defaults(func=_events)
    p = sub.add_parser("say", parents=[common], help="the device answers this text prompt out loud")
    p.add_argument("text", nargs="+", help="what to say to the model")
    p.add_argument("--no-wait", action="store_true", help="return once queued, do not wait for the reply")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for the reply (default 60)")
    p.set_defaults(func=_say)
    p = sub.add_parser("mute", parents=[common], help="mute the microphone (the device stops listening)")
    p.set_defaults(func=_control("mute", muted=True))
    p = sub.add_parser("unmute", parents=[common], help="unmute the microphone")
    p.set_defaults(func=_control("mute", muted=False))
    p = sub.add_parser("talk", parents=[common], help="push-to-talk from the shell: start a turn (--off ends it)")
    p.add_argument("--off", action="store_true", help="end the turn: the device answers")
    p.set_defaults(func=_control("talk"))
    p = sub.add_parser("new-conversation", parents=[common],
                       help="forget the conversation: the next session starts fresh")
    p.set_defaults(func=_control("new_conversation"))
    p = sub.add_parser("devices", parents=[common, as_json], help="audio devices, their rates, and which are selected")
    p.set_defaults(func=_devices)
    p = sub.add_parser("mic-test", parents=[common, as_json], help="a live level meter and the VAD's speech share")
    p.add_argument("seconds", nargs="?", type=float, default=5.0, help="seconds of audio (default 5)")
    p.add_argument("--device", help="input device (default [audio] input_device)")
    p.add_argument("--save", metavar="FILE.wav", help="save what was heard (16 kHz mono WAV)")
    p.add_argument("--echo", action="store_true",
                   help="play a phrase on the speaker meanwhile: how much of it the echo canceller removes")
    p.set_defaults(func=_mic_test)
    p = sub.add_parser("speaker-test", parents=[common], help="play a tone or a spoken phrase")
    p.add_argument("--device", help="output device (default [audio] output_device)")
    p.add_argument("--tone", type=float, default=440.0, metavar="HZ", help="tone frequency (default 440)")
    p.add_argument("--phrase", metavar="TEXT", help="speak this instead of a tone (needs flite)")
    p.add_argument("--volume", type=int, default=70, choices=range(0, 101), metavar="0-100", help="default 70")
    p.add_argument("--seconds", type=float, default=1.5, help="tone length (default 1.5)")
    p.set_defaults(func=_speaker_test)
    p = sub.add_parser("leds", parents=[common], help="show every state's LED pattern in turn")
    p.add_argument("--seconds", type=float, default=2.0, help="seconds per state (default 2)")
    p.set_defaults(func=_leds)
    p = sub.add_parser("button-test", parents=[common], help="print button gestures as they are recognised")
    p.add_argument("seconds", nargs="?", type=float, default=20.0, help="how long to watch (default 20)")
    p.set_defaults(func=_button_test)
    p = sub.add_parser("doctor", parents=[common, as_json], help="check everything; PASS / WARN / FAIL with the fix")
    p.set_defaults(func=_doctor)
    p = sub.add_parser("logs", help="the service's journal (journalctl -u pivoice)")
    p.add_argument("-f", "--follow", action="store_true", help="keep printing new lines")
    p.add_argument("-n", "--lines", type=int, metavar="N", help="the last N lines")
    p.add_argument("--since", metavar="WHEN", help='e.g. "1 hour ago", "today", "2026-11-21 10:00"')
    p.add_argument("-p", "--priority", metavar="LEVEL", help="err, warning, info, debug")
    p.add_argument("--json", action="store_true", help="journal entries as JSON (all fields)")
    p.set_defaults(func=_logs)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pivoice",
                                     description="Raspberry Pi voice device for the OpenAI Realtime API")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    parser.add_argument("--version", action="version", version=f"pivoice {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run the device (what the systemd service runs)")
    run.add_argument("--config", metavar="PATH", help=CONFIG_HELP)
    run.set_defaults(func=_run)

    sim = sub.add_parser("simulator", help="run the built-in Realtime server on this machine")
    sim.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    sim.add_argument("--port", type=int, default=8765, help="TCP port (default 8765; 0 picks one)")
    sim.add_argument("--api", choices=("realtime", "live"), default="realtime",
                     help="realtime (default: /v1/realtime) or live (GPT-Live: /v1/live/sessions)")
    sim.add_argument("--dialect", default="ga", help="ga (default) or beta (the retired preview shape)")
    sim.add_argument("--session-limit", type=float, default=3600.0, metavar="SECONDS",
                     help="session time limit in seconds (default 3600, as OpenAI GA)")
    sim.add_argument("--api-key", metavar="KEY[,KEY]", help="accept only these keys (default: any non-empty key)")
    sim.add_argument("--speedup", type=float, default=4.0, help="reply audio is sent this much faster than real time")
    sim.add_argument("--http-port", type=int, default=None,
                     help="plain-HTTP port for POST /v1/realtime/client_secrets (default --port + 1; 0 picks one)")
    sim.add_argument("--no-quirks", action="store_true",
                     help="do not reproduce the text-only replies that replayed text history causes")
    sim.add_argument("--bad-key", choices=("http", "in_band"), default="http",
                     help="live: refuse a bad key with HTTP 401 (default) or an error event and close 1008")
    sim.add_argument("--usage-interval", type=float, default=60.0, metavar="SECONDS",
                     help="live: seconds between session.usage.updated events (default 60)")
    sim.set_defaults(func=_simulator)

    demo = sub.add_parser("demo", help="a whole conversation on this machine: no Pi, no key, no network")
    demo.add_argument("--out", default="pivoice-demo.wav", help="WAV file for what the device said")
    demo.add_argument("--speedup", type=float, default=4.0, help="simulator reply speed (real time = 1)")
    demo.add_argument("--speaker", metavar="DEVICE", help="play on this sound card (e.g. default) instead of the WAV")
    demo.add_argument("--api", choices=("realtime", "live"), default="realtime",
                      help="realtime (default) or live (GPT-Live: connect on demand, a delegated tool call)")
    demo.set_defaults(func=_demo)
    _token_server_parser(sub)
    _diagnostics(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    from .control import BadRequest, DaemonUnreachable
    from .redact import scrub

    try:
        code: int = args.func(args)
        return code
    except DaemonUnreachable as exc:
        print(f"pivoice: {exc}", file=sys.stderr)
        return 3
    except (PivoiceError, BadRequest) as exc:
        print(f"pivoice: error: {scrub(str(exc))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `pivoice events | head`: the reader left, nothing to report
        sys.stderr.close()
        return 0
    except Exception as exc:
        logging.getLogger(__name__).debug("traceback", exc_info=True)
        print(f"pivoice: {args.command} failed: {exc.__class__.__name__}: {scrub(str(exc))[:300]} "
              "(run with -vv for details)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
