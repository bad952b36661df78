"""The control socket's client side: how ``pivoice status | events | say | ...`` reach the
running daemon (the server side is :mod:`device.control`). Every failure is a message."""

from __future__ import annotations

import contextlib
import json
import socket
from collections.abc import Iterator
from typing import Any


# ------------------------------------------------------------------------ the client side
class DaemonUnreachable(Exception):
    """No daemon answers on the control socket (not running, hung, or not ours to use)."""


class BadRequest(ValueError):
    """A request the daemon would refuse; caught before it is sent."""


#: Flags that must be JSON booleans: a string "false" would otherwise read as true.
_BOOLEAN_FLAGS = {"mute": "muted", "talk": "on"}


def check_request(obj: dict[str, Any]) -> None:
    flag = _BOOLEAN_FLAGS.get(str(obj.get("cmd")))
    if flag and flag in obj and obj[flag] is not None and not isinstance(obj[flag], bool):
        raise BadRequest(f"{obj['cmd']}: {flag} must be true or false, not {obj[flag]!r}")
    if obj.get("cmd") == "say" and (not isinstance(obj.get("text"), str) or not obj["text"].strip()):
        raise BadRequest("say: the text must be a non-empty string")


#: Seconds the CLI waits for a live daemon to answer a request.
ANSWER_TIMEOUT_S = 5.0


def request(path: str, obj: dict[str, Any], *, timeout_s: float = ANSWER_TIMEOUT_S) -> dict[str, Any]:
    """One request, one reply (blocking; for the CLI)."""
    check_request(obj)
    with _connect(path, timeout_s) as sock:
        try:
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                # A busy daemon answers and closes before reading: its answer is still there.
                sock.sendall(json.dumps(obj).encode() + b"\n")
            data = b""
            while not data.endswith(b"\n"):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
        except TimeoutError:
            raise DaemonUnreachable(_no_answer(path, timeout_s)) from None
        except OSError as exc:
            raise DaemonUnreachable(f"the connection to the daemon at {path} failed: {exc.strerror or exc}") from None
    if not data:
        raise DaemonUnreachable(f"the daemon closed {path} without answering")
    return _decode(data, path)


class EventStream:
    """The daemon's event stream, subscribed when the constructor returns (the daemon has
    acknowledged), so a request sent afterwards cannot be answered before we listen."""

    def __init__(self, path: str, *, timeout_s: float | None = None) -> None:
        self.path = path
        self._sock = _connect(path, ANSWER_TIMEOUT_S)  # a live daemon acknowledges at once
        self._buf = b""
        try:
            self._sock.sendall(json.dumps({"cmd": "events", "ack": True}).encode() + b"\n")
            first = next(self._lines(), None)
        except TimeoutError:
            self.close()
            raise DaemonUnreachable(_no_answer(path, ANSWER_TIMEOUT_S)) from None
        except BaseException:
            self.close()
            raise
        if first is None or not first.get("subscribed"):
            self.close()
            raise DaemonUnreachable(f"the daemon refused the event stream: {(first or {}).get('error', 'no answer')}")
        self._sock.settimeout(timeout_s)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return self._lines()

    def _lines(self) -> Iterator[dict[str, Any]]:
        while True:
            while b"\n" not in self._buf:
                try:
                    chunk = self._sock.recv(65536)
                except TimeoutError:
                    raise TimeoutError("no event from the daemon in time") from None
                except OSError:
                    return
                if not chunk:
                    return
                self._buf += chunk
            line, self._buf = self._buf.split(b"\n", 1)
            yield _decode(line, self.path)

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> EventStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def stream(path: str, obj: dict[str, Any], *, timeout_s: float | None = None) -> Iterator[dict[str, Any]]:
    """Events as they come; ``timeout_s`` of silence raises TimeoutError."""
    with _connect(path, ANSWER_TIMEOUT_S) as sock:
        sock.sendall(json.dumps(obj).encode() + b"\n")
        sock.settimeout(timeout_s)
        buf = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionError:
                return
            if not chunk:
                return
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                yield _decode(line, path)


def _decode(line: bytes, path: str) -> dict[str, Any]:
    try:
        obj = json.loads(line)
    except ValueError:
        raise DaemonUnreachable(f"{path} answered with something that is not pivoice's JSON") from None
    if not isinstance(obj, dict):
        raise DaemonUnreachable(f"{path} answered with something that is not pivoice's JSON")
    return obj


def _no_answer(path: str, timeout_s: float | None) -> str:
    return (f"the daemon at {path} accepted the connection but did not answer within {timeout_s:g} s "
            "(stopped or hung? see `systemctl status pivoice` and `pivoice logs`)")


def _connect(path: str, timeout_s: float | None) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout_s)
    try:
        sock.connect(path)
    except FileNotFoundError:
        sock.close()
        raise DaemonUnreachable(f"the pivoice daemon is not running (no socket at {path}); "
                               "start it with `systemctl start pivoice`") from None
    except ConnectionRefusedError:
        sock.close()
        raise DaemonUnreachable(f"the pivoice daemon is not running (stale socket {path}); "
                               "start it with `systemctl start pivoice`") from None
    except PermissionError:
        sock.close()
        raise DaemonUnreachable(f"no permission to use {path}: run as root or add yourself to the "
                               "pivoice group (`sudo usermod -aG pivoice $USER`, then log in again)") from None
    except TimeoutError:
        sock.close()
        raise DaemonUnreachable(_no_answer(path, timeout_s)) from None
    except OSError as exc:
        sock.close()
        # "AF_UNIX path too long" (sun_path holds 107 bytes), not a socket, ...
        raise DaemonUnreachable(f"cannot connect to the control socket {path[:120]}: {exc.strerror or exc}; "
                               "check --socket / [control] socket (an absolute path of at most 107 bytes)") from None
    return sock
