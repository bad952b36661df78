"""``pivoice doctor``: every link of the chain checked, each PASS / WARN / FAIL with its fix.

SKIP marks a check that does not apply here (no Wi-Fi, not a Pi). Exit 1 when anything FAILs.
The API key is never printed; its presence and the server's verdict on it are.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .. import config as cfg
from .. import control
from ..errors import PivoiceError
from ..redact import scrub

MARKS = {"PASS": "PASS", "WARN": "WARN", "FAIL": "FAIL", "SKIP": "SKIP"}


@dataclass
class Check:
    name: str
    result: str
    detail: str
    fix: str = ""


def _run(*cmd: str, timeout: float = 5.0) -> subprocess.CompletedProcess[str] | None:
    if not shutil.which(cmd[0]):
        return None
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired):
        return None


def check_config(path: str | None) -> tuple[Check, cfg.Config | None]:
    try:
        config = cfg.load(path)
    except PivoiceError as exc:
        return Check("config", "FAIL", str(exc), exc.fix), None
    return Check("config", "PASS", f"{config.source} is valid"), config


def check_key(config: cfg.Config) -> Check:
    if config.realtime.simulator:
        return Check("api key", "SKIP", "not needed: the built-in simulator")
    if cfg.api_key():
        return Check("api key", "PASS", "present (not shown)")
    creds = Path("/etc/pivoice/openai_api_key")
    if creds.exists():
        try:
            present = bool(creds.read_text().strip())
        except PermissionError:
            return Check("api key", "SKIP", f"{creds} is root-only; run doctor with sudo to check it")
        if present:
            return Check("api key", "PASS", f"present in {creds} (not shown)")
    return Check("api key", "FAIL", "no API key", "sudo ./install.sh --key-file FILE, or put it in "
                 "/etc/pivoice/openai_api_key (mode 600) and run: sudo systemctl reload pivoice")


def check_network(config: cfg.Config) -> list[Check]:
    if config.realtime.simulator:
        return [Check("network", "SKIP", "the built-in simulator needs no network")]
    url = urlsplit(config.realtime.url)
    host, port = url.hostname or "", url.port or (443 if url.scheme == "wss" else 80)
    checks = []
    try:
        addresses = sorted({str(a[4][0]) for a in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)})
        checks.append(Check("dns", "PASS", f"{host} -> {', '.join(addresses[:3])}"))
    except OSError as exc:
        return [Check("dns", "FAIL", f"cannot resolve {host}: {exc}", "check the network and /etc/resolv.conf")]
    if url.scheme == "wss":
        try:
            with (socket.create_connection((host, port), timeout=5) as raw,
                  ssl.create_default_context().wrap_socket(raw, server_hostname=host) as tls):
                    checks.append(Check("tls", "PASS", f"{tls.version()} to {host}, certificate valid"))
        except ssl.SSLCertVerificationError as exc:
            return checks + [Check("tls", "FAIL", f"certificate not trusted: {exc.verify_message}",
                                   "check the clock (certificates need the right date) and ca-certificates")]
        except OSError as exc:
            return checks + [Check("tls", "FAIL", f"cannot connect to {host}:{port}: {exc}",
                                   "check the network and firewall")]
    elif host not in ("127.0.0.1", "localhost", "::1"):
        checks.append(Check("tls", "WARN", f"{config.realtime.url} is not encrypted", "use a wss:// URL"))
    checks.append(asyncio.run(_handshake(config)))
    return checks


async def _handshake(config: cfg.Config) -> Check:
    from ..realtime.connection import Endpoint, RealtimeConnection

    rt = config.realtime
    key = cfg.api_key() or _key_file()
    if rt.api == "live":
        return await _live_handshake(config, key)
    try:
        conn = await RealtimeConnection.open(Endpoint(url=rt.url, model=rt.model, dialect=rt.dialect, api_key=key),
                                             open_timeout_s=10, ping_interval_s=None)
    except PivoiceError as exc:
        return Check("realtime", "FAIL", str(exc).split(" (")[0], exc.fix)
    session = conn.session
    await conn.close()
    limit = f", session limit {session.expires_at - time.time():.0f} s" if session and session.expires_at else ""
    return Check("realtime", "PASS", f"WebSocket handshake ok: session {session.id if session else '?'}, "
                 f"model {session.model if session else rt.model}{limit}")


async def _live_handshake(config: cfg.Config, key: str) -> Check:
    """GPT-Live: session.start -> session.started, then session.close at once (a few billed seconds)."""
    from ..live.connection import LiveConnection, LiveEndpoint
    from ..live.events import SessionClose
    from ..live.models import SessionConfig

    rt = config.realtime
    try:
        conn = await LiveConnection.open(LiveEndpoint(url=rt.url, model=rt.model, api_key=key),
                                         SessionConfig.build(model=rt.model, voice=rt.voice),
                                         open_timeout_s=10, ping_interval_s=None)
    except PivoiceError as exc:
        return Check("live", "FAIL", str(exc).split(" (")[0], exc.fix)
    session = conn.session
    with contextlib.suppress(PivoiceError, OSError):   # TimeoutError is an OSError
        await conn.send(SessionClose())
        async with asyncio.timeout(5):
            await _until_closed(conn)
    await conn.close()
    limit = f", session limit {session.expires_at - time.time():.0f} s" if session and session.expires_at else ""
    return Check("live", "PASS", f"GPT-Live handshake ok: session {session.id if session else '?'}, "
                 f"model {session.model if session else rt.model}{limit}")


async def _until_closed(conn: Any) -> None:
    """Read to ``session.closed``: the usage is final only then."""
    async for _ in conn:
        pass


def _key_file() -> str:
    try:
        return Path("/etc/pivoice/openai_api_key").read_text().strip()
    except OSError:
        return ""


def check_audio(config: cfg.Config) -> list[Check]:
    if config.audio.backend == "simulated":
        return [Check("audio", "SKIP", "[audio] backend = \"simulated\"")]
    from hardware import audio as hw

    try:
        pa = hw._pyaudio().PyAudio()
    except PivoiceError as exc:
        return [Check("audio", "FAIL", str(exc), exc.fix)]
    checks = []
    try:
        for kind, name, output in (("microphone", config.audio.input_device, False),
                                   ("speaker", config.audio.output_device, True)):
            try:
                device = hw.find_device(pa, name, output=output)
                rate, channels = hw.negotiate(pa, device, output=output)
                checks.append(Check(kind, "PASS", f"{device.name!r} opens at {rate} Hz, {channels} ch"))
            except PivoiceError as exc:
                capture = "capture" if not output else "playback"
                checks.append(Check(kind, "FAIL", f"no {capture} device: {exc}".split(" (check")[0],
                                    f"`pivoice devices` lists them; `{'arecord' if not output else 'aplay'} -l` shows "
                                    "what the kernel sees (a HAT driver may need reinstalling after a kernel update)"))
    finally:
        pa.terminate()
    return checks


def check_handsfree(config: cfg.Config) -> list[Check]:
    """The echo canceller's library and the wake word model (diag/handsfree.py)."""
    from .handsfree import checks

    return [Check(*c) for c in checks(config)]


def check_gpio(config: cfg.Config) -> list[Check]:
    from hardware.gpio import board_model, choose_factory

    model = board_model()
    chosen = choose_factory(config.gpio.pin_factory, model)
    checks = []
    if chosen == "mock":
        checks.append(Check("gpio", "SKIP" if config.gpio.pin_factory == "mock" else "WARN",
                            f"mock pins ({model or 'not a Raspberry Pi'}): no LEDs or button"))
    else:
        try:
            from hardware.gpio import make_pin_factory

            make_pin_factory(chosen)
            checks.append(Check("gpio", "PASS", f"{chosen} on {model}"))
        except PivoiceError as exc:
            checks.append(Check("gpio", "FAIL", str(exc).split(" (")[0], exc.fix))
    groups = _groups_of("pivoice")
    if groups is None:
        checks.append(Check("service user", "WARN", "no pivoice user: the service is not installed",
                            "sudo ./install.sh"))
    else:
        missing = [g for g in ("audio", "gpio", "spi") if g not in groups]
        checks.append(Check("service user", "WARN" if missing else "PASS",
                            f"pivoice is in {', '.join(sorted(groups))}"
                            + (f"; not in {', '.join(missing)}" if missing else ""),
                            f"sudo usermod -aG {','.join(missing)} pivoice" if missing else ""))
    return checks


def _groups_of(user: str) -> set[str] | None:
    result = _run("id", "-nG", user)
    if result is None or result.returncode != 0:
        return None
    return set(result.stdout.split())


def check_service(socket_path: str) -> list[Check]:
    checks = []
    result = _run("systemctl", "is-active", "pivoice")
    if result is None:
        checks.append(Check("service", "SKIP", "no systemctl here"))
    else:
        state = result.stdout.strip() or "unknown"
        enabled = (_run("systemctl", "is-enabled", "pivoice") or result).stdout.strip()
        verdict = "PASS" if state == "active" and enabled == "enabled" else "FAIL" if state == "failed" else "WARN"
        checks.append(Check("service", verdict, f"pivoice.service is {state}, {enabled or 'not installed'}",
                            "" if verdict == "PASS" else "sudo systemctl enable --now pivoice; pivoice logs -n 50"))
    try:
        status = control.request(socket_path, {"cmd": "status"}, timeout_s=3)
        if status.get("ok") is False or "state" not in status:
            checks.append(Check("daemon", "WARN", f"did not give its status: {scrub(str(status.get('error')))[:200]}",
                                "pivoice status; pivoice logs"))
            return checks
        bad = status["state"] in ("error", "offline")
        last = f"; last error: {scrub(str(status['last_error']))}" if bad and status.get("last_error") else ""
        checks.append(Check("daemon", "WARN" if bad else "PASS",
                            f"state {status['state']}, connection {status.get('link')}" + last,
                            "pivoice status; pivoice logs" if bad else ""))
        if isinstance(status.get("mic_level"), dict):
            checks.append(_mic_level(status["mic_level"]))
        if status.get("microphone_unclocked"):    # hardware/pacing.py
            checks.append(Check("microphone clock", "WARN", "the daemon's microphone delivers audio faster than real "
                                "time: it is not a sound card with a clock (ALSA's null device, a file?); it is "
                                "read at real time", "set [audio] input_device to the microphone; `pivoice devices` "
                                "lists them"))
    except control.DaemonUnreachable as exc:
        checks.append(Check("daemon", "WARN", str(exc).split(";")[0], "sudo systemctl start pivoice"))
    return checks


def _mic_level(level: dict[str, Any]) -> Check:
    """What the running daemon's microphone hears (device/audio/miclevel.py)."""
    from ..audio import miclevel

    text = miclevel.describe(level)
    if (level.get("no_signal_for_s") or 0) >= miclevel.SILENT_WARN_S:
        return Check("mic level", "WARN", text.split(". ")[0],
                     "alsamixer (F4: capture; the card's capture switch and volume), or [audio] input_device; "
                     "`pivoice mic-test` with the daemon stopped")
    if not level.get("periods"):
        return Check("mic level", "SKIP", text + " (missing or not open yet: see the daemon's status)")
    return Check("mic level", "PASS", text)


def check_metrics(config: cfg.Config) -> Check:
    """Does the Prometheus endpoint answer, and is it pivoice's?"""
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    address = config.metrics.address
    if address is None:
        return Check("metrics", "SKIP", "off ([metrics] listen is empty)")
    host, port = address
    if port == 0:
        return Check("metrics", "SKIP", "port 0: picked at start; `pivoice status` shows the URL")
    host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
    url = f"http://{'[' + host + ']' if ':' in host else host}:{port}/metrics"
    try:
        with urllib.request.urlopen(url, timeout=3) as response:
            families = {f.name: f for f in text_string_to_metric_families(response.read().decode("utf-8", "replace"))}
    except (OSError, ValueError) as exc:
        return Check("metrics", "WARN", f"{url} does not answer: {getattr(exc, 'reason', exc)}",
                     "is pivoice running (pivoice status shows the metrics URL)? "
                     "`pivoice logs` says why it is not serving")
    if "pivoice_state" not in families:
        return Check("metrics", "WARN", f"{url} answers, but not with pivoice's metrics",
                     "another program uses the port: change [metrics] listen and restart pivoice")
    state = next((s.labels["pivoice_state"] for s in families["pivoice_state"].samples if s.value == 1), "?")
    return Check("metrics", "PASS", f"{url} answers: {len(families)} metric families, state {state}")


def check_wifi() -> Check:
    wlans = [p.name for p in Path("/sys/class/net").glob("wl*")]
    if not wlans:
        return Check("wifi power save", "SKIP", "no Wi-Fi interface")
    result = _run("iw", "dev", wlans[0], "get", "power_save")
    if result is None:
        return Check("wifi power save", "WARN", "cannot tell (iw is not installed)", "sudo apt install iw")
    if "on" in result.stdout.lower():
        return Check("wifi power save", "WARN", f"on for {wlans[0]}: causes dropouts and stutter",
                     f"sudo iw dev {wlans[0]} set power_save off; to keep it off: "
                     "sudo nmcli connection modify <wifi> 802-11-wireless.powersave 2")
    return Check("wifi power save", "PASS", f"off for {wlans[0]}")


def check_power() -> Check:
    result = _run("vcgencmd", "get_throttled")
    if result is None or "=" not in result.stdout:
        return Check("power", "SKIP", "vcgencmd not present (not a Raspberry Pi)")
    flags = int(result.stdout.strip().split("=")[1], 16)
    now = [name for bit, name in ((0, "under-voltage"), (1, "frequency capped"), (2, "throttled"))
           if flags & (1 << bit)]
    past = [name for bit, name in ((16, "under-voltage"), (17, "frequency capping"), (18, "throttling"))
            if flags & (1 << bit)]
    if now:
        return Check("power", "FAIL", f"now: {', '.join(now)} (0x{flags:x})",
                     "use the official 5 V power supply (5.1 V, 3 A; 5 A for a Pi 5) and a short cable")
    if past:
        return Check("power", "WARN", f"since boot: {', '.join(past)} (0x{flags:x})", "check the power supply")
    return Check("power", "PASS", "no under-voltage or throttling since boot")


def check_clock() -> Check:
    result = _run("timedatectl", "show", "-p", "NTPSynchronized", "--value")
    if result is None or result.returncode != 0:
        return Check("clock", "SKIP", "timedatectl not available")
    if result.stdout.strip() == "yes":
        return Check("clock", "PASS", "synchronised (NTP)")
    return Check("clock", "WARN", "not synchronised: TLS and session limits need the right time",
                 "sudo timedatectl set-ntp true; check network access to NTP")


def check_disk(path: str = "/") -> Check:
    free = shutil.disk_usage(path).free / 2**20
    if free < 100:
        return Check("disk", "FAIL", f"{free:.0f} MB free on {path}",
                     "free space: sudo journalctl --vacuum-size=50M; apt clean")
    if free < 500:
        return Check("disk", "WARN", f"{free:.0f} MB free on {path}",
                     "sudo journalctl --vacuum-size=50M; sudo apt clean")
    return Check("disk", "PASS", f"{free / 1024:.1f} GB free on {path}")


def doctor(config_path: str | None, socket_path: str | None, *, as_json: bool) -> int:
    first, config = check_config(config_path)
    checks = [first]
    if config is not None:
        socket_path = socket_path or config.control.socket
        groups: list[Callable[[], list[Check]]] = [
            lambda: [check_key(config)], lambda: check_network(config), lambda: check_audio(config),
            lambda: check_handsfree(config), lambda: check_gpio(config)]
        for group in groups:
            checks.extend(group())
    checks.extend(check_service(socket_path or cfg.ControlConfig.socket))
    if config is not None:
        checks.append(check_metrics(config))
    checks.extend([check_wifi(), check_power(), check_clock(), check_disk()])
    failed = any(c.result == "FAIL" for c in checks)
    if as_json:
        print(json.dumps({"ok": not failed, "checks": [asdict(c) for c in checks]}, indent=2))
    else:
        for c in checks:
            print(f"{MARKS[c.result]}  {c.name:<16} {c.detail}")
            if c.fix and c.result in ("WARN", "FAIL"):
                print(f"      {'':<16} fix: {c.fix}")
        print("doctor: " + ("some checks FAILED" if failed else "no failures"))
    return 1 if failed else 0
