"""``pivoice logs``: the service's journal, with the usual filters."""

from __future__ import annotations

import grp
import os
import shutil


def logs(*, follow: bool, lines: int | None, since: str | None, priority: str | None, as_json: bool) -> int:
    journalctl = shutil.which("journalctl")
    if journalctl is None:
        print("pivoice: journalctl is not installed: logs are only in the journal under systemd")
        return 2
    if os.geteuid() != 0 and not _can_read_system_journal():
        print("pivoice: you cannot read the system journal: run `sudo pivoice logs`, or join the group "
              "(`sudo usermod -aG systemd-journal $USER`, then log in again)")
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


def _can_read_system_journal() -> bool:
    readers = set()
    for name in ("systemd-journal", "adm", "wheel"):
        try:
            readers.add(grp.getgrnam(name).gr_gid)
        except KeyError:
            pass
    return bool(readers & set(os.getgroups()))
