"""Short-lived client secrets: the device asks its token server for one before each session.

With ``[realtime] token_url`` set the device holds no OpenAI key, only its own device token
(``PIVOICE_DEVICE_TOKEN`` or the systemd credential ``pivoice_device_token``). The token
server (``pivoice token-server``, :mod:`device.tokenserver`) holds the real key and mints an
``ek_…`` secret with ``POST /v1/realtime/client_secrets`` (reference section 3.1); the device
uses it as its bearer key for the WebSocket. A secret limits when a session may *start*; a
started session runs to its own limit, and one secret may start several sessions.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from ..errors import AuthenticationError, ConnectionLost, RejectedSetupError, ServerError
from ..httpjson import post_json
from ..redact import scrub

logger = logging.getLogger(__name__)

_TOKEN_FIX = ("give this device its line in the token server's tokens file (`pivoice token-server --add NAME`) "
              "and put that token in PIVOICE_DEVICE_TOKEN or the credential pivoice_device_token")


@dataclass(frozen=True)
class ClientSecret:
    """An ephemeral key. ``value`` never appears in repr or logs."""

    value: str = field(repr=False)
    #: Epoch seconds (the server's clock) after which no new session may start with it.
    expires_at: float

    def seconds_left(self, now_epoch_s: float) -> float:
        return self.expires_at - now_epoch_s


def _server_message(body: object) -> tuple[str | None, str]:
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return None, ""
    code = error.get("code") if isinstance(error.get("code"), str) else None
    message = scrub(str(error.get("message") or "")[:200])
    return code, message


async def fetch_client_secret(token_url: str, device_token: str, *, timeout_s: float) -> ClientSecret:
    """Ask the token server at ``token_url`` for a client secret, presenting ``device_token``.

    Contract (call it before opening each Realtime session, rotations and reconnects included,
    and connect with ``Endpoint(api_key=secret.value)``):

    * returns a :class:`ClientSecret` whose ``value`` is the bearer key for the WebSocket;
      ``expires_at`` is in the token server's clock (epoch seconds). Do not cache it past
      ``expires_at``; fetching a fresh one per session is cheap and always right.
    * raises :class:`~device.errors.AuthenticationError` (fatal until the config changes,
      with a fix) when there is no device token or the server refuses it (HTTP 401/403:
      unknown or revoked device);
    * raises :class:`~device.errors.RejectedSetupError` (fatal) when ``token_url`` does not
      answer like a token server (HTTP 400/404/405);
    * raises :class:`~device.errors.ConnectionLost` (retry with backoff) when the server cannot
      be reached or does not answer within ``timeout_s``;
    * raises :class:`~device.errors.ServerError` (retry with backoff) for a 5xx (e.g. OpenAI
      refused the server's own key: the server's admin fixes that, not the device) or an
      answer without a secret.

    Neither the device token nor the secret appears in any message or log line.
    """
    where = urlsplit(token_url).netloc or token_url
    if not device_token:
        raise AuthenticationError("[realtime] token_url is set but this device has no device token", fix=_TOKEN_FIX)
    try:
        status, body = await post_json(token_url, {}, bearer=device_token, timeout_s=timeout_s)
    except ValueError:
        raise RejectedSetupError(f"[realtime] token_url {token_url!r} is not an http(s) URL",
                                 fix="set [realtime] token_url to the token server, "
                                     "e.g. http://homeserver:8788/token") from None
    except (OSError, TimeoutError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ConnectionLost(
            f"cannot reach the token server at {where}: {reason.__class__.__name__}: {reason}") from None
    code, message = _server_message(body)
    if status in (401, 403):
        raise AuthenticationError(f"the token server at {where} refused this device's token (HTTP {status})",
                                  code=code, fix=_TOKEN_FIX)
    if status in (400, 404, 405):
        raise RejectedSetupError(f"{token_url} does not answer like a pivoice token server (HTTP {status})",
                                 code=code, fix="check [realtime] token_url (the token server's /token URL)")
    if status != 200:
        raise ServerError(f"the token server at {where} could not mint a secret (HTTP {status}"
                          f"{', ' + code if code else ''}): {message}", code=code)
    value = body.get("value") if isinstance(body, dict) else None
    expires = body.get("expires_at") if isinstance(body, dict) else None
    if not isinstance(value, str) or not value or isinstance(expires, bool) or not isinstance(expires, (int, float)):
        raise ServerError(f"the token server at {where} answered without a client secret")
    logger.info("got a client secret from %s (expires at %d)", where, expires)
    return ClientSecret(value=value, expires_at=float(expires))
