"""The exceptions pivoice raises, and the one place that decides whether to retry.

Every error says whose fault it was and what to do about it::

    PivoiceError
    ├── ConfigError                 the admin's config file or environment is wrong (fatal)
    ├── LocalProtocolError          pivoice tried to build an event the protocol forbids (a bug)
    ├── RemoteProtocolError         the server sent something unparseable (logged, survived)
    └── RealtimeError               the Realtime server or the link said no
        ├── AuthenticationError     bad or missing API key (fatal until the key changes)
        ├── RejectedSetupError      wrong dialect, unknown model, rejected session settings
        │                           (fatal until the config changes)
        ├── SessionExpired          the session hit its time limit (normal: open a new one)
        ├── ServerError             an error event the device cannot recover from in-session
        └── ConnectionLost          network trouble (retry with backoff)
    ├── SettingError                a hardware setting that cannot work (hardware.errors)
    ├── AudioDeviceError            a microphone or speaker is missing, busy or gone (retry)
    └── GpioUnavailable             no GPIO (library, permission): run without LEDs/buttons

The root and the hardware errors live in :mod:`hardware.errors` (the lowest layer).

Messages never contain the API key: build them from codes and config keys, not from
server text that may echo the key.
"""

from __future__ import annotations

from hardware.errors import AudioDeviceError, GpioUnavailable, PivoiceError, SettingError

__all__ = ["AudioDeviceError", "AuthenticationError", "ConfigError", "ConnectionLost", "GpioUnavailable",
           "LocalProtocolError", "PivoiceError", "RealtimeError", "RejectedSetupError", "RemoteProtocolError",
           "ServerError", "SessionExpired", "SettingError", "should_retry"]


class ConfigError(PivoiceError):
    """The configuration file or environment is invalid. Names the key and the file."""

    fix = "edit the config file and restart (or send SIGHUP)"


class LocalProtocolError(PivoiceError):
    """pivoice tried to send an event the Realtime protocol does not allow: our bug."""


class RemoteProtocolError(PivoiceError):
    """The server sent a frame that is not a valid Realtime event; the link survives it."""


class RealtimeError(PivoiceError):
    """The Realtime server or the network ended or refused the session."""

    def __init__(self, message: str, *, code: str | None = None, fix: str | None = None) -> None:
        super().__init__(message, fix=fix)
        self.code = code


class AuthenticationError(RealtimeError):
    fix = "set a valid key in OPENAI_API_KEY (or the pivoice credential) and restart"


class RejectedSetupError(RealtimeError):
    fix = "check [realtime] url, model and dialect in the config"


class SessionExpired(RealtimeError):
    """The server ended the session at its time limit; a new session continues."""


class ServerError(RealtimeError):
    """An error the current session cannot recover from; reconnect with backoff."""


class ConnectionLost(RealtimeError):
    """The link dropped, timed out or never came up; reconnect with backoff."""

    fix = "check the network; pivoice retries on its own"


def should_retry(error: BaseException) -> bool:
    """The one decision of retry-or-fatal for anything that ends a Realtime connection.

    Retry: network loss, server errors, session expiry, audio devices that come and go.
    Fatal (until the configuration changes): bad key, rejected setup, bad config, our bugs.
    """
    if isinstance(error, (AuthenticationError, RejectedSetupError, ConfigError, LocalProtocolError)):
        return False
    return isinstance(error, (RealtimeError, RemoteProtocolError, AudioDeviceError, OSError, TimeoutError))


def link_cause(error: BaseException) -> str:
    """Why a Realtime link went down, in one word of a fixed set (a metrics label, never text):
    network, expired, closed (the server ended it), auth or setup."""
    if isinstance(error, AuthenticationError):
        return "auth"
    if isinstance(error, (RejectedSetupError, ConfigError, LocalProtocolError)):
        return "setup"
    if isinstance(error, SessionExpired):
        return "expired"
    if isinstance(error, (ServerError, RemoteProtocolError)):
        return "closed"
    return "network"
