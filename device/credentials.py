"""Secrets the device reads: never from the config file, from the environment or a systemd
credential (``LoadCredential=``, a root-only file handed to the service)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

CREDENTIAL = "openai_api_key"
DEVICE_TOKEN_CREDENTIAL = "pivoice_device_token"

__all__ = ["CREDENTIAL", "DEVICE_TOKEN_CREDENTIAL", "api_key", "device_token"]


def _secret(env: Mapping[str, str], variable: str, credential: str) -> str:
    """``$variable``, else the systemd credential ``credential``; "" when there is neither."""
    if env.get(variable):
        return env[variable].strip()
    creds = env.get("CREDENTIALS_DIRECTORY")
    if creds:
        try:
            return (Path(creds) / credential).read_text(encoding="utf-8").strip()
        except OSError:
            return ""
    return ""


def api_key(environ: Mapping[str, str] | None = None) -> str:
    """The API key from ``OPENAI_API_KEY`` or the systemd credential; "" when there is none."""
    return _secret(os.environ if environ is None else environ, "OPENAI_API_KEY", CREDENTIAL)


def device_token(environ: Mapping[str, str] | None = None) -> str:
    """This device's token for ``[realtime] token_url``, from ``PIVOICE_DEVICE_TOKEN`` or the
    systemd credential ``pivoice_device_token``; "" when there is none."""
    return _secret(os.environ if environ is None else environ, "PIVOICE_DEVICE_TOKEN", DEVICE_TOKEN_CREDENTIAL)
