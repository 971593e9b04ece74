"""Where a review is written: made aside in a folder of its own, then moved into place,
replacing only what this machine's voicectl wrote there before.

- A finished review folder holds a marker listing its files, sealed with this machine's
  key (:func:`voicectl.files.cache.machine_key`): a folder is replaced only when its
  marker is sealed here and it holds nothing but the files listed (a marker a pull
  request commits seals nothing; a note someone added blocks it).
- The folder a review is made in holds a lock for its lifetime and a ``.gitignore``; one
  left by a review killed midway is swept by the next, once its lock is free (a pid
  could belong to another PID namespace: a lock cannot).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import hmac
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from voicectl.errors import StateError, UsageError
from voicectl.files import safefile
from voicectl.files.cache import machine_key

MARKER = ".voicectl-review"
MARKER_BYTES = 4 * 1024 * 1024
WORK_PREFIX = ".voicectl-review-"
LOCK = ".lock"
IGNORE = "*\n"


@contextlib.contextmanager
def working(parent: Path) -> Iterator[Path]:
    """A folder beside the output to make the review in (``<it>/review``), locked while
    this runs and removed after; stale ones of killed reviews swept first."""
    _sweep(parent)
    with tempfile.TemporaryDirectory(prefix=WORK_PREFIX, dir=parent) as work:
        (Path(work) / ".gitignore").write_text(IGNORE)  # untracked, even if left behind
        # Locked before it is named: a sweep never finds this folder's lock free.
        with open(Path(work) / (LOCK + ".new"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.rename(Path(work) / (LOCK + ".new"), Path(work) / LOCK)
            yield Path(work) / "review"


def _sweep(parent: Path) -> None:
    """Remove the work folders of reviews that ended without removing them: each has a
    lock (opened, never made) that no process holds, and the ignore file they write."""
    for stale in parent.glob(f"{WORK_PREFIX}*"):
        if stale.is_symlink() or not stale.is_dir() or (stale / LOCK).is_symlink():
            continue
        try:
            if safefile.read_bytes(stale / ".gitignore", limit=16) != IGNORE.encode():
                continue  # not one of ours
            with open(stale / LOCK, "rb") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # free: its review ended
        except (OSError, StateError):
            continue  # held (a review at work), or not one of ours
        shutil.rmtree(stale, ignore_errors=True)


def seal(folder: Path) -> None:
    """Write the marker of a finished review folder (nothing, without a machine key: the
    folder then cannot be replaced, only an empty one written)."""
    key = machine_key()
    if key is None:
        return
    files = _files(folder)
    (folder / MARKER).write_text(json.dumps({"files": files, "mac": _mac(key, files)}))


def _files(folder: Path) -> list[str]:
    """Every entry under ``folder`` but folders, links not followed."""
    found = []
    for top, dirs, files in os.walk(folder, followlinks=False):
        links = [d for d in dirs if os.path.islink(os.path.join(top, d))]
        for name in [*files, *links]:
            path = Path(top) / name
            if path != folder / MARKER:
                found.append(path.relative_to(folder).as_posix())
    return sorted(found)


def _mac(key: bytes, files: list[str]) -> str:
    return hmac.new(key, json.dumps(files).encode(), hashlib.sha256).hexdigest()


def _sealed_here(folder: Path) -> bool:
    key = machine_key()
    try:  # never through a link, never more than a marker holds
        marker = json.loads(safefile.read_bytes(folder / MARKER, limit=MARKER_BYTES))
        files, mac = marker["files"], marker["mac"]
    except (OSError, ValueError, KeyError, TypeError, StateError):
        return False
    if key is None or not isinstance(files, list) or not isinstance(mac, str):
        return False
    return hmac.compare_digest(mac, _mac(key, files)) and _files(folder) == files


def replace(made: Path, out: Path) -> None:
    """``made`` in place of ``out``: an empty folder, or a review this machine wrote
    there and nobody added to; anything else is refused, and left as it was."""
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise UsageError(f"{out} is not a folder: name a folder for the review")
    if out.is_dir() and any(out.iterdir()):
        if out.is_symlink() or not _sealed_here(out):
            raise UsageError(
                f"{out} holds other files: name an empty folder, or a review written before"
            )
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
        try:
            os.replace(out, old)  # onto an empty folder of a unique name
            os.replace(made, out)
        except OSError:
            raise UsageError(f"another review wrote {out} meanwhile: run it again") from None
        shutil.rmtree(old, ignore_errors=True)
        return
    try:
        if out.is_dir():
            out.rmdir()
        os.replace(made, out)
    except OSError:
        raise UsageError(f"another review wrote {out} meanwhile: run it again") from None
