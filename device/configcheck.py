"""Checks for config values that parse but cannot work: URLs, socket paths, tool names, nesting.

Each check returns None when the value is usable, else ``(why, fix)`` for a
:class:`~device.errors.ConfigError`; :mod:`device.config` adds the key and the file.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .redact import url_secret

Problem = tuple[str, str | None] | None

#: Deepest nesting of arrays/tables accepted (a tool's JSON Schema needs a handful).
MAX_DEPTH = 32
#: Names the device's own tools use; an HTTP tool may not shadow them.
BUILTIN_TOOL_NAMES = ("set_volume", "mute_microphone", "get_time", "end_conversation")
#: A function name the Realtime API accepts: letters, digits, _ and -, at most 64.
_TOOL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,63}")
#: sun_path holds 108 bytes including the terminating NUL.
MAX_SOCKET_PATH = 107
_KEY_FIX = ("remove it from the URL and set OPENAI_API_KEY or the systemd credential 'openai_api_key' "
            "(install.sh --key-file)")


def depth(value: Any, level: int = 0) -> int:
    """How deep arrays and tables nest in ``value`` (stops counting past MAX_DEPTH)."""
    if level > MAX_DEPTH:
        return level
    if isinstance(value, dict):
        return max((depth(v, level + 1) for v in value.values()), default=level + 1)
    if isinstance(value, list):
        return max((depth(v, level + 1) for v in value), default=level + 1)
    return level


def key_in_url_problem(url: str) -> Problem:
    """A credential in the URL; the message does not echo the URL, which holds the secret."""
    if why := url_secret(url):
        return f"contains {why}; the API key does not belong in the config file", _KEY_FIX
    return None


def url_problem(url: str, schemes: tuple[str, ...]) -> Problem:
    """A URL that can be connected to: scheme, host, port 1-65535."""
    want = " or ".join(f"{s}://" for s in schemes)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return f"{url!r} is not a usable URL ({exc})", f"use {want}HOST[:PORT]/PATH with a port 1-65535"
    if parts.scheme.lower() not in schemes:
        return f"{url!r} is not a {want} URL", None
    if not parts.hostname:
        return f"{url!r} has no host name", f"use {want}HOST[:PORT]/PATH"
    if port == 0:
        return f"{url!r}: port 0 cannot be connected to", "use a port 1-65535"
    if any(c.isspace() or ord(c) < 32 for c in url):
        return f"{url!r} contains spaces or control characters", None
    return None


def socket_problem(path: str) -> Problem:
    """A path a Unix socket can be bound at (the daemon creates the directory)."""
    fix = "use an absolute path of at most 107 bytes, e.g. /run/pivoice/control.sock"
    if not path.startswith("/") or "\x00" in path or path.endswith("/"):
        return f"{path!r} is not an absolute file path", fix
    size = len(path.encode("utf-8", "surrogateescape"))
    if size > MAX_SOCKET_PATH:
        return f"the path is {size} bytes; a Unix socket path holds at most {MAX_SOCKET_PATH}", fix
    try:
        return _socket_file_problem(Path(path), fix)
    except PermissionError:
        # An admin outside the pivoice group cannot look into /run/pivoice: not a config error
        # (the CLI says how to get access when it connects).
        return None


def _socket_file_problem(path: Path, fix: str) -> Problem:
    if path.is_dir():
        return f"{str(path)!r} is a directory", f"name the socket file inside it, e.g. {path}/control.sock"
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                return f"{str(parent)!r} is a file, so no socket can be made under it", fix
            break
    if path.exists() and not path.is_socket():
        return f"{str(path)!r} exists and is not a socket (the daemon will not replace it)", fix
    return None


def tool_name_problem(name: str) -> Problem:
    if name in BUILTIN_TOOL_NAMES:
        return (f"{name!r} is a built-in tool of the device ({', '.join(BUILTIN_TOOL_NAMES)})",
                "give the HTTP tool another name")
    if not _TOOL_NAME.fullmatch(name):
        return (f"{name!r} is not a valid function name",
                "use letters, digits, _ and -, starting with a letter or _, at most 64 characters")
    return None


def listen_problem(listen: str) -> Problem:
    """``host:port`` for the metrics endpoint ("" is off)."""
    host, sep, port = listen.rpartition(":")
    if listen and not (sep and host.strip("[]") and port.isdigit() and int(port) <= 65535):
        return (f"{listen!r} is not host:port with a port 0-65535",
                "e.g. \"127.0.0.1:9101\"; \"0.0.0.0:9101\" to let the LAN scrape it; \"\" turns the endpoint off")
    return None


def tool_timeout_problem(timeout: object) -> Problem:
    if (not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or not math.isfinite(timeout)
            or not 0 < timeout <= 60):
        return "seconds, more than 0 and at most 60", None
    return None
