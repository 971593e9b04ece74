"""Opening the files voicectl keeps beside the state, never through a link.

The state, its journal, the lock and the caches live in the repository, which a pull
request can change: any of them can arrive as a symbolic link (to ``/dev/zero``, to
``/etc/passwd``, to a directory outside), a FIFO or a directory. Followed, they make
voicectl hang, exhaust memory, read outside files or write outside the repository. So
they are opened without following a link and without blocking, and used only when they
are regular files; caches only in a real directory inside the repository.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import BinaryIO, cast

from voicectl.errors import StateError

MAX_BYTES = 256 * 1024 * 1024  # more than any state of 100,000 voices; /dev/zero is endless


def open_regular(path: Path, mode: str = "rb") -> BinaryIO:
    """``path`` opened in ``mode`` ("rb", "ab", "a+b" or "r+b"; the "a" modes create it)
    if it is a regular file reached without a link; FileNotFoundError as ``open`` gives it."""
    flags = {
        "rb": os.O_RDONLY,
        "ab": os.O_WRONLY | os.O_APPEND | os.O_CREAT,
        "a+b": os.O_RDWR | os.O_APPEND | os.O_CREAT,
        "r+b": os.O_RDWR,
    }
    try:
        fd = os.open(path, flags[mode] | os.O_NOFOLLOW | os.O_NONBLOCK, 0o644)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise StateError(f"{path}: is a symbolic link; voicectl does not follow it") from None
        if exc.errno == errno.EISDIR:
            raise StateError(f"{path}: is a directory, not a file") from None
        raise
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise StateError(f"{path}: is not a regular file (a FIFO or a device?); remove it")
    if mode != "rb" and info.st_nlink != 1:  # writing would change another file too
        os.close(fd)
        raise StateError(f"{path}: is a hard link to another file; voicectl will not write it")
    os.set_blocking(fd, True)
    return cast(BinaryIO, os.fdopen(fd, mode))


def read_bytes(path: Path, limit: int = MAX_BYTES) -> bytes:
    """A regular file's bytes (see :func:`open_regular`), refused past ``limit``."""
    with open_regular(path) as handle:
        if os.fstat(handle.fileno()).st_size > limit:
            raise StateError(f"{path}: is larger than {limit:,} bytes; not read")
        return handle.read(limit + 1)


def linked_part(base: Path, path: Path) -> Path | None:
    """The first part of ``path`` below ``base`` that is a symbolic link, or None: a file
    written there would land wherever the link points (outside the repository, say)."""
    here = base
    for part in path.relative_to(base).parts:
        here = here / part
        if here.is_symlink():
            return here
        if not here.exists():
            return None
    return None
