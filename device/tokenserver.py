"""``pivoice token-server``: hands devices short-lived Realtime client secrets.

Runs on a home server or router, never on the device. It holds the real OpenAI key
(``OPENAI_API_KEY`` or the systemd credential ``openai_api_key``) and answers
``POST /token`` from devices that present their own token as a bearer token: it mints an
``ek_…`` secret with ``POST {upstream}/realtime/client_secrets`` (reference section 3.1:
session type, model and expiry) and returns ``{"value", "expires_at"}``.

The tokens file lists one device per line, ``NAME TOKEN`` (``#`` starts a comment). Removing a
line revokes that device at once (the file is re-read when it changes). The file must be
readable by its owner only (mode 0600): otherwise the server refuses to start, and refuses
to answer if it changes later. Logs name devices, never tokens, keys or secrets.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import os
import secrets
import stat
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ConfigError
from .httpjson import HttpReply, HttpRequest, error_reply, post_json, serve_json
from .redact import scrub

logger = logging.getLogger(__name__)

DEFAULT_TOKENS_FILE = Path("/etc/pivoice/device-tokens")
DEFAULT_UPSTREAM = "https://api.openai.com/v1"
TOKEN_PATH = "/token"
MIN_TOKEN_CHARS = 16


@dataclass(frozen=True)
class TokenServerOptions:
    tokens_file: Path = DEFAULT_TOKENS_FILE
    #: The OpenAI API base; the simulator's is ``RealtimeSimulator.http_url``.
    upstream: str = DEFAULT_UPSTREAM
    model: str = "gpt-realtime-2"
    #: Seconds a secret may start sessions (10..7200, reference section 3.1).
    expires_s: int = 600
    upstream_timeout_s: float = 10.0
    api_key: str = field(default="", repr=False)

    def __post_init__(self) -> None:
        if not 10 <= self.expires_s <= 7200:
            raise ConfigError(f"--expires {self.expires_s}: a client secret lives 10 to 7200 seconds")
        if not self.api_key:
            raise ConfigError("the token server has no OpenAI API key",
                              fix="set OPENAI_API_KEY or the systemd credential openai_api_key")
        if not self.upstream.startswith(("http://", "https://")):
            raise ConfigError(f"--upstream {self.upstream!r} is not an http(s) URL")


class DeviceTokens:
    """The tokens file, re-read whenever its size or modification time changes."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._stamp: tuple[int, int, int] | None = None
        self._tokens: dict[str, str] = {}

    def load(self) -> dict[str, str]:
        """Token -> device name. ConfigError when the file is missing, open to others or bad."""
        try:
            st = self.path.stat()
        except OSError as exc:
            raise ConfigError(f"tokens file {self.path}: {exc.strerror}",
                              fix=f"create it with `pivoice token-server --tokens {self.path} --add NAME`") from None
        if st.st_mode & 0o077:
            raise ConfigError(f"tokens file {self.path} is open to other users (mode {stat.filemode(st.st_mode)})",
                              fix=f"chmod 600 {self.path}")
        stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        if stamp != self._stamp:
            self._tokens = self._parse(self.path.read_text(encoding="utf-8"))
            self._stamp = stamp
            logger.info("tokens file %s: %d device(s)", self.path, len(self._tokens))
        return self._tokens

    def _parse(self, text: str) -> dict[str, str]:
        tokens: dict[str, str] = {}
        for number, line in enumerate(text.splitlines(), 1):
            words = line.split("#", 1)[0].split()
            if not words:
                continue
            if len(words) > 2:
                raise ConfigError(f"tokens file {self.path} line {number}: expected `NAME TOKEN`")
            name, token = (words[0], words[1]) if len(words) == 2 else (f"line-{number}", words[0])
            if len(token) < MIN_TOKEN_CHARS:
                raise ConfigError(f"tokens file {self.path} line {number} ({name}): the token is shorter than "
                                  f"{MIN_TOKEN_CHARS} characters",
                                  fix="generate one with `pivoice token-server --add NAME`")
            tokens[token] = name
        return tokens

    def device_for(self, token: str) -> str | None:
        """The device name for ``token``, compared in constant time; None when unknown."""
        found = None
        for known, name in self.load().items():
            if hmac.compare_digest(known.encode(), token.encode()):
                found = name
        return found


def add_device(path: Path, name: str) -> str:
    """Append a new device line with a fresh random token (creating the file 0600); return it."""
    if not name or any(c.isspace() or c == "#" for c in name):
        raise ConfigError(f"device name {name!r}: one word, no '#'")
    if path.exists() and name in DeviceTokens(path).load().values():
        raise ConfigError(f"device {name!r} is already in {path}", fix="--revoke it first to give it a new token")
    token = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    with os.fdopen(fd, "a", encoding="utf-8") as out:
        out.write(f"{name} {token}\n")
    return token


def revoke_device(path: Path, name: str) -> bool:
    """Remove the device's line; True when there was one."""
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    kept = [line for line in lines if (line.split("#", 1)[0].split() or [""])[0] != name]
    if len(kept) == len(lines):
        return False
    tmp = path.with_name(path.name + ".new")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.writelines(kept)
    os.replace(tmp, path)
    return True


class TokenServer:
    def __init__(self, options: TokenServerOptions) -> None:
        self.options = options
        self.tokens = DeviceTokens(options.tokens_file)
        self._server: asyncio.Server | None = None

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> TokenServer:
        self.tokens.load()  # refuse to start on a missing or open tokens file
        self._server = await serve_json(self.handle, host, port)
        logger.info("token server on http://%s:%d%s (model %s, secrets live %d s)",
                    host, self.port, TOKEN_PATH, self.options.model, self.options.expires_s)
        return self

    @property
    def port(self) -> int:
        assert self._server is not None, "start() first"
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{TOKEN_PATH}"

    async def stop(self) -> None:
        if self._server:
            self._server.close()
            await self._server.wait_closed()

    async def handle(self, request: HttpRequest) -> HttpReply:
        if request.path.split("?")[0] != TOKEN_PATH:
            return error_reply(404, "not_found", f"the token endpoint is POST {TOKEN_PATH}")
        if request.method != "POST":
            return error_reply(405, "method_not_allowed", f"use POST {TOKEN_PATH}", Allow="POST")
        try:
            device = self.tokens.device_for(request.bearer()) if request.bearer() else None
        except ConfigError as exc:
            logger.error("refusing every device: %s", exc)
            return error_reply(503, "tokens_file_unusable", "the token server's tokens file is unusable; see its log")
        if device is None:
            logger.warning("refused an unknown or revoked device token from %s", request.peer)
            return error_reply(401, "unknown_device_token", "This device token is not in the token server's tokens "
                               "file (unknown or revoked).", **{"WWW-Authenticate": 'Bearer realm="pivoice"'})
        return await self._mint(device)

    async def _mint(self, device: str) -> HttpReply:
        opts = self.options
        body = {"expires_after": {"anchor": "created_at", "seconds": opts.expires_s},
                "session": {"type": "realtime", "model": opts.model}}
        url = opts.upstream.rstrip("/") + "/realtime/client_secrets"
        try:
            status, answer = await post_json(url, body, bearer=opts.api_key, timeout_s=opts.upstream_timeout_s)
        except (OSError, TimeoutError) as exc:
            logger.error("cannot reach %s for %s: %s", opts.upstream, device, exc.__class__.__name__)
            return error_reply(503, "upstream_unreachable", "the token server cannot reach OpenAI; try again later")
        value = answer.get("value") if isinstance(answer, dict) else None
        if status == 200 and isinstance(value, str) and isinstance(answer.get("expires_at"), (int, float)):
            logger.info("minted a client secret for %s (model %s, %d s)", device, opts.model, opts.expires_s)
            return HttpReply(200, {"value": value, "expires_at": answer["expires_at"], "model": opts.model})
        error = answer.get("error") if isinstance(answer, dict) else None
        code = error.get("code") if isinstance(error, dict) else None
        message = scrub(str(error.get("message", "")) if isinstance(error, dict) else "", opts.api_key)[:200]
        logger.error("OpenAI refused to mint a secret for %s: HTTP %s %s %s", device, status, code, message)
        if status in (401, 403):
            return error_reply(502, "upstream_refused_key", "OpenAI refused the token server's API key; "
                               "its admin must fix OPENAI_API_KEY / the openai_api_key credential")
        return error_reply(502, "upstream_error", f"OpenAI could not mint a secret (HTTP {status}, {code}): {message}")


async def serve_forever(options: TokenServerOptions, host: str, port: int) -> None:
    server = await TokenServer(options).start(host, port)
    print(f"pivoice token server on http://{host}:{server.port}{TOKEN_PATH} "
          f"(tokens file {options.tokens_file})", flush=True)
    try:
        await asyncio.Future()
    finally:
        await server.stop()
