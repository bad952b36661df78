"""The simulator's ``POST /v1/realtime/client_secrets`` and the ``ek_…`` keys it mints.

Reference section 3.1: body ``{"expires_after": {"anchor": "created_at", "seconds": 10..7200
(default 600)}, "session": {"type": "realtime", "model": …, …}}``; answer ``{"value":
"ek_…", "expires_at", "session"}``. A secret limits when a session may *start*; it may start
several. The mint does not check that the model is a realtime one (3P hurttlocker/o8#2165).
Time is an input (``clock``), so expiry is tested without waiting.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..httpjson import HttpReply, HttpRequest, error_reply
from .config import SimError, default_session

SECRETS_PATH = "/v1/realtime/client_secrets"


@dataclass(frozen=True)
class Minted:
    expires_at: int
    #: The session configuration baked into the secret (applied to sessions it starts).
    session: dict[str, Any]


class SecretStore:
    def __init__(self, ids: Callable[[str], str], clock: Callable[[], float],
                 key_ok: Callable[[str], bool]) -> None:
        self._ids = ids
        self._clock = clock
        self._key_ok = key_ok
        self.minted: dict[str, Minted] = {}

    def lookup(self, key: str) -> Minted | None:
        """The secret if it was minted here and has not expired; else None."""
        minted = self.minted.get(key)
        return minted if minted and self._clock() < minted.expires_at else None

    def is_expired(self, key: str) -> bool:
        return key in self.minted and self.lookup(key) is None

    async def handle(self, request: HttpRequest) -> HttpReply:
        if request.path.split("?")[0].rstrip("/") not in (SECRETS_PATH, "/openai" + SECRETS_PATH):
            return error_reply(404, None, f"Invalid URL ({request.method} {request.path})")
        if request.method != "POST":
            return error_reply(405, None, f"Invalid method for URL ({request.method} {request.path})")
        key = request.bearer()
        if not key:
            return error_reply(401, None, "You didn't provide an API key. You need to provide your API key in an "
                               "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).")
        if key.startswith("ek_") or not self._key_ok(key):
            return error_reply(401, "invalid_api_key", f"Incorrect API key provided: {key[:3]}…{key[-4:]}. You can "
                               "find your API key at https://platform.openai.com/account/api-keys.")
        try:
            body = request.json()
            return HttpReply(200, self._mint(body))
        except ValueError:
            return error_reply(400, "invalid_json", "We could not parse the JSON body of your request.")
        except SimError as err:
            return HttpReply(400, {"error": {"message": err.message, "type": err.type, "param": err.param,
                                             "code": err.code}})

    def _mint(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise SimError("invalid_type", "Invalid type for body: expected an object.")
        after = body.get("expires_after") or {}
        seconds = after.get("seconds", 600) if isinstance(after, dict) else None
        if after.get("anchor", "created_at") != "created_at":
            raise SimError("invalid_value", "Invalid value: expires_after.anchor. Supported values are: 'created_at'.",
                           "expires_after.anchor")
        if not isinstance(seconds, int) or isinstance(seconds, bool) or not 10 <= seconds <= 7200:
            code = "integer_below_min_value" if isinstance(seconds, int) and seconds < 10 else "integer_above_max_value"
            raise SimError(code, f"Invalid 'expires_after.seconds': expected a value from 10 to 7200, got {seconds!r}.",
                           "expires_after.seconds")
        session = body.get("session") or {"type": "realtime"}
        if not isinstance(session, dict) or session.get("type") not in ("realtime", "transcription"):
            raise SimError("missing_required_parameter", "Missing required parameter: 'session.type'.", "session.type")
        value = "ek_" + self._ids("x")[2:]
        expires_at = int(self._clock()) + seconds
        self.minted[value] = Minted(expires_at=expires_at, session=copy.deepcopy(session))
        shown = default_session(self._ids("sess"), str(session.get("model") or "gpt-realtime"), 0)
        shown.update({k: v for k, v in session.items() if k not in ("audio", "model")})
        return {"value": value, "expires_at": expires_at, "session": shown}
