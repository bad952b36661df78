"""The secrets the device needs, from the environment or systemd credentials (never the config
file): the API key and, with a token server, this device's token."""

from __future__ import annotations

import os
from pathlib import Path

CREDENTIAL = "openai_api_key"
DEVICE_TOKEN_CREDENTIAL = "pivoice_device_token"


def api_key(environ: dict[str, str] | None = None) -> str:
    """The API key from ``OPENAI_API_KEY`` or the systemd credential; "" when there is none."""
    env = os.environ if environ is None else environ
    if env.get("OPENAI_API_KEY"):
        return env["OPENAI_API_KEY"].strip()
    creds = env.get("CREDENTIALS_DIRECTORY")
    if creds:
        try:
            return (Path(creds) / CREDENTIAL).read_text(encoding="utf-8").strip()
        except OSError:
            return ""
    return ""


def device_token(environ: dict[str, str] | None = None) -> str:
    """This device's token for ``[realtime] token_url``, from ``PIVOICE_DEVICE_TOKEN`` or the
    systemd credential ``pivoice_device_token``; "" when there is none."""
    env = os.environ if environ is None else environ
    if env.get("PIVOICE_DEVICE_TOKEN"):
        return env["PIVOICE_DEVICE_TOKEN"].strip()
    creds = env.get("CREDENTIALS_DIRECTORY")
    if creds:
        try:
            return (Path(creds) / DEVICE_TOKEN_CREDENTIAL).read_text(encoding="utf-8").strip()
        except OSError:
            return ""
    return ""
