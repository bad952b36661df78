"""A gzipped newc cpio archive (what the Linux kernel unpacks as an initramfs) from a
directory tree, written in Python: the test machine has no cpio tool."""

from __future__ import annotations

import gzip
import os
import stat
from pathlib import Path


def _entry(out, name: str, st: os.stat_result | None, data: bytes, ino: int) -> None:
    mode = st.st_mode if st else 0
    fields = [ino, mode, 0, 0, st.st_nlink if st else 1, int(st.st_mtime) if st else 0, len(data), 0, 0, 0, 0,
              len(name) + 1, 0]
    header = b"070701" + b"".join(f"{f:08X}".encode() for f in fields)
    out.write(header + name.encode() + b"\0")
    out.write(b"\0" * (-(len(header) + len(name) + 1) % 4))
    out.write(data)
    out.write(b"\0" * (-len(data) % 4))


def write_initramfs(tree: Path, target: Path) -> None:
    with gzip.open(target, "wb", compresslevel=1) as out:
        ino = 1
        for dirpath, dirnames, filenames in os.walk(tree):
            dirnames.sort()
            for name in [*sorted(dirnames), *sorted(filenames)]:
                path = Path(dirpath) / name
                st = path.lstat()
                if stat.S_ISLNK(st.st_mode):
                    data = os.readlink(path).encode()
                elif stat.S_ISREG(st.st_mode):
                    data = path.read_bytes()
                else:
                    data = b""
                _entry(out, str(path.relative_to(tree)), st, data, ino)
                ino += 1
        _entry(out, "TRAILER!!!", None, b"", 0)
