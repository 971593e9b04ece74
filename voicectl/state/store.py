"""Where the state lives: the seam a backend plugs into (a file here; PostgreSQL next).

A store holds one state and answers five questions, as Terraform's backends do:

- ``read()``: the state as last written, or None before the first write;
- ``write(new, base)``: compare-and-swap: ``new`` (serial bumped) replaces what is
  stored only if what is stored is still ``base`` (None: nothing yet). A store that
  holds another lineage, a newer serial, or other content at the same serial refuses
  with :class:`StaleWrite` and writes nothing;
- ``locked(command, ...)``: the one writer at a time, held for a block; a held lock is
  refused naming its holder, or waited for;
- ``holder()``: who holds the lock now, as far as can be told, or None;
- ``versions()``: the versions this store wrote, oldest first (serial, lineage, when,
  sha256 of the bytes).

:class:`FileStore` keeps the state in the repository's file (git carries it between
machines) and the versions it wrote on this machine beside the caches, in
``.voicectl/state-versions/``. ``tests/test_store.py`` holds the contract every store
must pass.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from contextlib import AbstractContextManager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from voicectl.errors import ConfigError, StaleWrite, StateError
from voicectl.files import safefile
from voicectl.files.atomic import write_atomic
from voicectl.model import State
from voicectl.state import lock
from voicectl.state import statefile as state

if TYPE_CHECKING:
    from voicectl.declare.config import Config


# The digest of the last state file found valid, keyed with this machine's secret: a
# state unchanged since skips its schema check (see voicectl.state.statefile).
STATE_CHECKED = Path(".voicectl") / "cache" / "state-checked.json"


@dataclass(frozen=True)
class Version:
    """One state a store wrote."""

    serial: int
    lineage: str
    written_at: str
    sha256: str
    written_by: str = ""  # user@host, where the store records it
    git_commit: str = ""  # the commit checked out when it was written, where recorded


class StateStore(Protocol):
    """The state's home, whatever it is."""

    display: str  # how messages name it
    # Whether the store keeps an apply's journal too (PostgreSQL: a runner that dies is
    # recovered by the next, anywhere), beside the runner's own file.
    keeps_journal: bool
    # Whether it keeps the text of every version (PostgreSQL), or only the current one
    # (the state file: git keeps the rest).
    keeps_versions: bool

    def read(self) -> State | None: ...

    def write(self, new: State, base: State | None, *, settles_journal: bool = False) -> State:
        """``settles_journal``: ``new`` holds the journal's clones; the journal the store
        keeps goes in the same write."""
        ...

    def journal_lines(self) -> list[bytes]: ...

    def journal_add(self, line: bytes) -> None: ...

    def journal_clear(self) -> None: ...

    def locked(
        self, command: str, notice: Callable[[str], None], timeout: float = 0.0
    ) -> AbstractContextManager[None]: ...

    def holder(self) -> dict[str, Any] | None: ...

    def versions(self) -> list[Version]: ...

    def pull(self, serial: int | None = None, lineage: str | None = None) -> bytes | None: ...

    def force_unlock(self, expected: str) -> dict[str, Any] | None: ...


class FileStore:
    """The state in a JSON file of the repository, locked with the OS's lock beside it."""

    keeps_journal = False  # the journal is the file beside the state, carried by git
    keeps_versions = False

    def __init__(
        self, path: Path, display: str, root: Path | None = None, checked: Path | None = None
    ) -> None:
        self.path, self.display, self.checked = path, display, checked
        # this machine's versions, beside the caches; none without a repository root
        self.history = None if root is None else root / ".voicectl" / "state-versions"

    def read(self) -> State | None:
        return state.load(self.path, self.display, self.checked)

    def write(self, new: State, base: State | None, *, settles_journal: bool = False) -> State:
        if base is not None and new.lineage != base.lineage:
            raise StaleWrite(f"{self.display}: a state of another lineage is not written over")
        stored = self.read()
        if stored != base:
            raise StaleWrite(stale_message(self.display, stored, base))
        written = state.save(self.path, new)  # as a read gives it back: a next base
        self._keep(written)
        return written

    def locked(
        self, command: str, notice: Callable[[str], None], timeout: float = 0.0
    ) -> AbstractContextManager[None]:
        return lock.locked(self.path, command, state.now(), notice, timeout)

    def holder(self) -> dict[str, Any] | None:
        return lock.running_holder(self.path)

    def force_unlock(self, expected: str) -> dict[str, Any] | None:
        return lock.force_unlock(self.path, expected)

    def journal_lines(self) -> list[bytes]:
        return []

    def journal_add(self, line: bytes) -> None:
        return None

    def journal_clear(self) -> None:
        return None

    def pull(self, serial: int | None = None, lineage: str | None = None) -> bytes | None:
        """The state file's bytes, when ``serial`` and ``lineage`` are none or its own
        (the file keeps no earlier bodies: git does)."""
        try:
            raw = safefile.read_bytes(self.path)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StateError(f"{self.display}: cannot read the state: {exc.strerror}") from None
        if serial is None and lineage is None:
            return raw
        found = state.parse(raw, self.display)
        if serial not in (None, found.serial) or lineage not in (None, found.lineage):
            return None
        return raw

    def versions(self) -> list[Version]:
        found = []
        history = self.history
        if history is None or history.is_symlink() or not history.is_dir():
            return []
        for path in history.glob("*.json"):
            try:  # never through a link, never a FIFO, never a big file
                data = json.loads(safefile.read_bytes(path, limit=4096))
                version = Version(**data)
            except (OSError, ValueError, TypeError, StateError):
                continue  # a record torn or edited: the history is a convenience
            fields = (version.serial, version.lineage, version.written_at, version.sha256)
            if isinstance(fields[0], int) and all(isinstance(f, str) for f in fields[1:]):
                found.append(version)
        return sorted(found, key=lambda v: (v.written_at, v.serial))

    def _keep(self, written: State) -> None:
        """A line of this machine's history of the file (best effort: a cache)."""
        data = state.dumps(written)
        version = Version(
            written.serial, written.lineage, state.now(), hashlib.sha256(data).hexdigest()
        )
        record = json.dumps(version.__dict__, sort_keys=True).encode()
        # Only into real directories: a pull request could make either a link elsewhere.
        if self.history is None or any(d.is_symlink() for d in (self.history.parent, self.history)):
            return
        with suppress(OSError):
            # Named by serial and digest only: a lineage read from a file a pull request
            # can edit is never part of a path.
            name = f"{written.serial:012d}-{version.sha256[:16]}.json"
            write_atomic(self.history / name, record, durable=False)


def stale_message(display: str, stored: State | None, base: State | None) -> str:
    """Why a compare-and-swap write was refused, in words."""
    if stored is None:
        return f"{display}: the state is gone since it was read; nothing was written"
    if base is None:
        return (
            f"{display}: a state (serial {stored.serial}) was written since this one began "
            "from none; nothing was written"
        )
    if stored.lineage != base.lineage:
        return (
            f"{display}: the state stored is of another lineage ({stored.lineage}, not "
            f"{base.lineage}); nothing was written"
        )
    return (
        f"{display}: the state changed since it was read (serial {stored.serial} stored, "
        f"{base.serial} read); nothing was written"
    )


PG_CONN_VARIABLE = "VOICECTL_PG_CONN_STR"


def for_repository(cfg: Config, commit: Callable[[], str] = lambda: "") -> StateStore:
    """The store a repository's configuration names: its state file, or PostgreSQL
    (``backend: pg``; ``VOICECTL_PG_CONN_STR`` overrides its ``conn_str``, and what
    neither says comes from libpq's environment: PGHOST, PGUSER, PGPASSWORD, ~/.pgpass).
    ``commit`` tells the commit checked out, for the versions a store keeps."""
    pg = cfg.pg
    if pg is None:
        return FileStore(cfg.state_path, cfg.state, cfg.root, cfg.root / STATE_CHECKED)
    try:
        # Loaded here: psycopg is an optional extra, and only this backend needs it.
        from voicectl.state.pgstore import PgStore
    except ImportError:
        raise ConfigError(
            "voicectl.yaml: backend.pg needs the PostgreSQL driver: pip install 'voicectl[pg]'"
        ) from None
    given = os.environ.get(PG_CONN_VARIABLE, "").strip()
    source = PG_CONN_VARIABLE if given else "voicectl.yaml: backend.pg.conn_str"
    checked = cfg.root / STATE_CHECKED
    return PgStore(given or pg.conn_str, pg.schema, pg.workspace, commit, source, checked)


__all__ = ["FileStore", "StateStore", "Version", "for_repository", "stale_message"]
