"""The caches under ``.voicectl/cache/``: hints, never inputs.

A cache file is read only from a real directory, never through a link; one torn,
foreign or edited is ignored; one is written at once but without fsync (a cache needs
no durability). A file's stat key says whether it can be trusted unread.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

from voicectl.errors import StateError
from voicectl.files import jsontext, safefile
from voicectl.files.atomic import write_atomic


def read_cache(path: Path, **header: Any) -> dict[str, Any] | None:
    """A cache file's JSON object if every ``header`` key holds the given value; None
    when missing, unreadable, torn or foreign (a cache is a hint, never an input)."""
    _check_cache_dirs(path)
    try:
        data = jsontext.loads(safefile.read_bytes(path))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or any(data.get(k) != v for k, v in header.items()):
        return None
    return data


def write_cache(path: Path, data: bytes) -> None:
    """Replace a cache file (under ``.voicectl/cache/``) at once, but without fsync: a
    cache needs no durability (a torn one is ignored), and after a large checkout an fsync
    can wait for the file system to write back everything the checkout wrote. The first
    write also keeps ``.voicectl/`` out of git, whichever cache comes first."""
    _check_cache_dirs(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ignore_in_git(path.parent.parent)
    write_atomic(path, data, durable=False)


def ignore_in_git(directory: Path) -> None:
    """``directory`` (``.voicectl/``) kept out of git by a ``.gitignore`` of ``*``, made
    once, never through a link."""
    gitignore = directory / ".gitignore"
    if not gitignore.exists() and not gitignore.is_symlink():
        with contextlib.suppress(FileExistsError):
            fd = os.open(gitignore, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
            with os.fdopen(fd, "w") as handle:
                handle.write("*\n")


def _check_cache_dirs(path: Path) -> None:
    """``.voicectl/`` and its ``cache/`` must be real directories (a pull request could
    make either a link out of the repository: caches would be read or written there)."""
    for directory in (path.parent.parent, path.parent):
        if directory.is_symlink() or (directory.exists() and not directory.is_dir()):
            raise StateError(
                f"{directory}: is a link or not a directory; voicectl keeps its caches "
                "only in a real directory: remove it"
            )


def stat_key(st: os.stat_result) -> list[int]:
    """What says a file is unchanged since it was read: a change of content moves its
    size, mtime or ctime (ctime cannot be set back), a file put in its place its inode or
    device."""
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev]


def machine_key() -> bytes | None:
    """A random key kept in this user's cache directory (made on first use), or None:
    what lets a cache vouch only for what this machine found (a cache file a pull
    request adds to the repository then vouches for nothing)."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "voicectl"
    path = base / "state-check.key"
    try:
        key = safefile.read_bytes(path, limit=64)
        if len(key) == 32:
            return key
    except FileNotFoundError:
        pass
    except (OSError, StateError):
        return None
    try:
        base.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except OSError:
        return None
    key = os.urandom(32)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key)
    return key
