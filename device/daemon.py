"""``pivoice run``: load the config, set up logging, run the device until SIGTERM."""

from __future__ import annotations

import asyncio
import logging

from . import config as cfg
from .app import App
from .notify import console_logging, journal_logging


class ContextFields(logging.Filter):
    """Adds the device's state and session id to every record (journald fields)."""

    def __init__(self, app: App) -> None:
        super().__init__()
        self.app = app

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "PIVOICE_STATE"):
            record.PIVOICE_STATE = str(self.app.machine.state)
        if not hasattr(record, "PIVOICE_SESSION_ID"):
            record.PIVOICE_SESSION_ID = self.app.manager.stats.session_id or ""
        return True


def run(config_path: str | None, *, verbose: int = 0) -> int:
    level = logging.DEBUG if verbose > 1 else logging.INFO
    if not journal_logging(level):
        console_logging(level)
    for noisy in ("websockets", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    config = cfg.load(config_path)
    app = App(config, config_path=config_path)
    fields = ContextFields(app)
    for handler in logging.getLogger().handlers:
        handler.addFilter(fields)
    logging.getLogger(__name__).info("config %s; key %s", config.source, "set" if cfg.api_key() else "missing")
    return asyncio.run(app.run())
