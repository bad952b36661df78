"""The ``pivoice`` command. Each subcommand lives in its own module; this only dispatches."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys

from .errors import PivoiceError


def _simulator(args: argparse.Namespace) -> int:
    from .realtime.dialect import Dialect
    from .simulator.server import SimulatorOptions, serve_forever

    keys = frozenset(k for k in (args.api_key or os.environ.get("PIVOICE_SIMULATOR_KEYS", "")).split(",") if k)
    options = SimulatorOptions(dialect=Dialect.parse(args.dialect, key="--dialect"),
                               session_limit_s=args.session_limit, api_keys=keys, speedup=args.speedup,
                               quirks=not args.no_quirks)
    try:
        asyncio.run(serve_forever(options, args.host, args.port))
    except KeyboardInterrupt:
        pass
    return 0


def _demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    return asyncio.run(run_demo(out_wav=args.out, speedup=args.speedup))


def _run(args: argparse.Namespace) -> int:
    from .daemon import run

    return run(args.config, verbose=args.verbose)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pivoice", description="Raspberry Pi voice device for the OpenAI Realtime API")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run the device (what the systemd service runs)")
    run.add_argument("--config", metavar="PATH", help="config file (default $PIVOICE_CONFIG or /etc/pivoice/config.toml)")
    run.set_defaults(func=_run)

    sim = sub.add_parser("simulator", help="run the built-in Realtime server on this machine")
    sim.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    sim.add_argument("--port", type=int, default=8765, help="TCP port (default 8765; 0 picks one)")
    sim.add_argument("--dialect", default="ga", help="ga (default) or beta (the retired preview shape)")
    sim.add_argument("--session-limit", type=float, default=3600.0, metavar="SECONDS",
                     help="session time limit in seconds (default 3600, as OpenAI GA)")
    sim.add_argument("--api-key", metavar="KEY[,KEY]", help="accept only these keys (default: any non-empty key)")
    sim.add_argument("--speedup", type=float, default=4.0, help="reply audio is sent this much faster than real time")
    sim.add_argument("--no-quirks", action="store_true",
                     help="do not reproduce the text-only replies that replayed text history causes")
    sim.set_defaults(func=_simulator)

    demo = sub.add_parser("demo", help="a whole conversation on this machine: no Pi, no key, no network")
    demo.add_argument("--out", default="pivoice-demo.wav", help="WAV file for what the device said")
    demo.add_argument("--speedup", type=float, default=4.0, help="simulator reply speed (real time = 1)")
    demo.set_defaults(func=_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except PivoiceError as exc:
        print(f"pivoice: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
