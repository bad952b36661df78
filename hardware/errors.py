"""The errors of the hardware layer, and the root of every error pivoice raises on purpose.

The root lives here, in the lowest layer, so that ``hardware`` needs nothing from ``device``
(``device.errors`` builds its tree on it)::

    PivoiceError
    ├── SettingError        a hardware setting that cannot work (a pin, a preset); names the key
    ├── AudioDeviceError    a microphone or speaker is missing, busy or gone (retried)
    └── GpioUnavailable     no GPIO (library, permission): the device runs without LEDs/button
"""

from __future__ import annotations


class PivoiceError(Exception):
    """Base class: every error pivoice raises on purpose. ``fix`` says what to do about it."""

    #: A sentence for the person fixing it; every subclass sets or overrides it.
    fix: str = ""

    def __init__(self, message: str, *, fix: str | None = None) -> None:
        super().__init__(message)
        if fix is not None:
            self.fix = fix

    def __str__(self) -> str:
        message = super().__str__()
        return f"{message} ({self.fix})" if self.fix else message


class SettingError(PivoiceError, ValueError):
    """A hardware setting that cannot work; the config loader adds the file's name."""

    fix = "edit the config file and restart"


class AudioDeviceError(PivoiceError):
    fix = "check the device name with `pivoice devices`; pivoice retries on its own"


class GpioUnavailable(PivoiceError):
    fix = "add the service user to the gpio group, or set [gpio] pin_factory = \"mock\""
