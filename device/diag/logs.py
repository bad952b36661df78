"""``pivoice logs``: the service's journal, with the usual filters."""

from __future__ import annotations

import os
import shutil


def logs(*, follow: bool, lines: int | None, since: str | None, priority: str | None, as_json: bool) -> int:
    journalctl = shutil.which("journalctl")
    if journalctl is None:
        print("pivoice: journalctl is not installed: logs are only in the journal under systemd")
        return 2
    args = [journalctl, "-u", "pivoice", "--no-pager"]
    if follow:
        args.append("-f")
    if lines is not None:
        args += ["-n", str(lines)]
    if since:
        args += ["--since", since]
    if priority:
        args += ["-p", priority]
    if as_json:
        args += ["-o", "json"]
    os.execv(journalctl, args)
    return 0  # not reached
