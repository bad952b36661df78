"""Keeping secrets out of output: what looks like an API key is never printed or logged.

Used for server text (which may echo a masked key), config error messages (an admin may paste
a key into any value) and status output (a URL with a key in its query).
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

#: OpenAI secret keys (sk-, sk-proj-...), ephemeral client secrets (ek_/ek-) and restricted keys.
KEYLIKE = re.compile(r"\b(sk|ek|rk)[-_][^\s.,;'\"]*")
#: URL query parameters that carry credentials.
SECRET_PARAMS = frozenset({"api_key", "api-key", "apikey", "key", "token", "access_token", "authorization",
                           "client_secret", "secret", "password"})


def scrub(text: str, secret: str = "") -> str:
    """``text`` with ``secret`` and anything shaped like a key replaced by ``[key]``."""
    if secret:
        text = text.replace(secret, "[key]")
    return KEYLIKE.sub("[key]", text)


def url_secret(url: str) -> str | None:
    """Why ``url`` carries a credential (a sentence without the credential), or None."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        parts, password = None, None
    if password:
        return "a password in the URL"
    if parts is not None:
        for name, _ in parse_qsl(parts.query, keep_blank_values=True):
            if name.lower() in SECRET_PARAMS:
                return f"a {name!r} query parameter"
    if KEYLIKE.search(url):
        return "something shaped like an API key (sk-...)"
    return None


def scrub_url(url: str) -> str:
    """``url`` with credential query parameters, passwords and key-shaped text replaced."""
    try:
        parts = urlsplit(url)
        query = [(k, "[key]" if k.lower() in SECRET_PARAMS else v)
                 for k, v in parse_qsl(parts.query, keep_blank_values=True)]
        netloc = parts.netloc.rsplit("@", 1)[-1] if parts.password or "@" in parts.netloc else parts.netloc
        url = urlunsplit(parts._replace(netloc=netloc, query=urlencode(query, safe="[]")))
    except ValueError:
        pass
    return scrub(url)
