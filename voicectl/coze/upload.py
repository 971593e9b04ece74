"""The bytes a clone sends: exactly the take the plan showed, read from inside the repository.

A take can change between the plan and the upload: rewritten in place, or swapped for a
symbolic link to a file outside the repository (by a process, or a pull request merged
while an apply waits). So a take is opened without following a link, from its real path
inside the repository, as a regular file, and hashed while it is streamed. The read
that reaches its end fails unless the whole file hashed to the plan's sha256: the
multipart body then never gets its closing boundary (nor the bytes its Content-Length
promised), so Coze never receives a whole request, and nothing is cloned.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Protocol

from voicectl.errors import TakeChanged


class Readable(Protocol):
    """What httpx's multipart encoder uses of a file."""

    name: str

    def read(self, size: int = -1) -> bytes: ...
    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int: ...
    def tell(self) -> int: ...
    def fileno(self) -> int: ...


@contextlib.contextmanager
def open_file(audio: Path | Readable) -> Iterator[tuple[str, Readable | BinaryIO]]:
    """A take's name and file for an upload: a path is opened here (and closed); an open
    take (one from :func:`open_take`) is the caller's to close."""
    if isinstance(audio, Path):
        with open(audio, "rb") as handle:
            yield audio.name, handle
    else:
        yield os.path.basename(str(getattr(audio, "name", "") or "take")), audio


def open_take(root: Path, relative: str, expected_sha256: str) -> VerifiedTake:
    """The take at ``relative`` (a repository path) for an upload checked against
    ``expected_sha256``."""
    real = os.path.realpath(root / relative)
    inside = os.path.realpath(root)
    if os.path.commonpath([real, inside]) != inside:
        raise TakeChanged(f"{relative}: resolves outside the repository; nothing was sent")
    try:
        fd = os.open(real, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        reason = f"cannot be opened ({exc.strerror})"
        raise TakeChanged(f"{relative}: {reason}; nothing was sent") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise TakeChanged(f"{relative}: is not a regular file any more; nothing was sent")
    return VerifiedTake(os.fdopen(fd, "rb"), relative, expected_sha256)


class VerifiedTake:
    """A file object for httpx's multipart encoder that hashes what it reads and fails
    the read that would end the file when the hash is not the plan's: the encoder then
    never writes the body's closing boundary."""

    def __init__(self, handle: BinaryIO, relative: str, expected_sha256: str) -> None:
        self._handle, self._relative, self._expected = handle, relative, expected_sha256
        self._hash = hashlib.sha256()
        self.name = os.path.basename(relative)

    def fileno(self) -> int:  # lets httpx know the length (Content-Length) from fstat
        return self._handle.fileno()

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        position = self._handle.seek(offset, whence)
        if position == 0:
            self._hash = hashlib.sha256()
        return position

    def tell(self) -> int:
        return self._handle.tell()

    def read(self, size: int = -1) -> bytes:
        chunk = self._handle.read(size)
        if chunk:
            self._hash.update(chunk)
            return chunk
        found = self._hash.hexdigest()
        if found != self._expected:
            raise TakeChanged(
                f"{self._relative}: changed since the plan (sha256 {found[:12]}, the plan's "
                f"{self._expected[:12]}); the upload was stopped before it was whole, so "
                "nothing was cloned; plan again"
            )
        return chunk

    def close(self) -> None:
        self._handle.close()

    def __enter__(self) -> VerifiedTake:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
