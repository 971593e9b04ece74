"""The state in PostgreSQL: one truth for a team's CI runners (``backend: pg``).

One row per workspace holds the state's canonical bytes as text (not jsonb, which
reorders keys and would change the digests saved plans bind), its lineage, serial,
format version and sha256, who wrote it and when; every version written is kept. A
write is a compare-and-swap inside a transaction: the row is locked, checked to be the
state the write began from, and replaced, never upserted blindly.

The lock is a session-level advisory lock held on a connection of its own for the
command's whole run (so never through a pooler in transaction mode, which hands a
session's statements to different server sessions), keyed by schema and workspace.
Its holder (who, host, pid, command, since, lock id) is a row the next runner reads. A
holder killed in any way frees the lock when its session ends: the server learns of a
vanished client through TCP keepalives (idle 10 s, then 3 probes 5 s apart).

Tables are made when absent; ``CREATE SCHEMA`` is skipped when the schema exists, so a
role that may not create schemas works in one made for it.
"""

from __future__ import annotations

import contextlib
import hashlib
from contextlib import nullcontext
from dataclasses import replace
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from voicectl.errors import StaleWrite, StateError
from voicectl.files import jsontext, safefile
from voicectl.files.cache import write_cache
from voicectl.model import State
from voicectl.state import lock
from voicectl.state import statefile as state
from voicectl.state.pgbase import quoted, said
from voicectl.state.pglock import PgLock
from voicectl.state.store import Version, stale_message

MAX_KEPT = 256 * 1024 * 1024  # a state kept on this machine, at most
# How a states row that does not read is put right: not from git, as a state file is.
RESTORE = (
    "`voicectl state versions` lists the versions PostgreSQL keeps and `voicectl state "
    "pull --serial N` prints one; a person with write access puts a good one back in the "
    "states row"
)


class PgStore(PgLock):
    """The state of one workspace in one schema of a PostgreSQL database."""

    keeps_journal = True
    keeps_versions = True

    # -- the state ----------------------------------------------------------------------

    def read(self) -> State | None:
        """The state stored now. Its text is fetched only when it is not the one this
        machine last read (kept beside the validity cache, and named by its sha256: the
        server answers the sha256 and, when it differs, the text, in one statement)."""
        kept = self._kept_body()
        known = hashlib.sha256(kept).hexdigest() if kept is not None else ""
        with self._session(create=False) as conn, conn.cursor(binary=True) as cursor:
            if not self._ready:
                return None  # no tables yet: nothing was ever written
            row = cursor.execute(
                sql.SQL(
                    "SELECT sha256, CASE WHEN sha256 = %s THEN NULL "
                    "ELSE convert_to(body, 'UTF8') END FROM {} WHERE workspace = %s"
                ).format(self._table("states")),
                [known, self.workspace],
            ).fetchone()
        if row is None:
            return None
        raw = kept if row[1] is None and kept is not None else bytes(row[1] or b"")
        if raw is not kept and hashlib.sha256(raw).hexdigest() != row[0]:  # kept: hashed
            raise StateError(
                f"{self.display}: the states row's sha256 is not that of its text (edited "
                f"by hand?); it was left unchanged ({RESTORE}, with the sha256 of its text)"
            )
        found = state.checked_parse(raw, self.display, self.checked, RESTORE)
        if raw is not kept:
            self._keep_body(raw)
        self._known = (found, row[0])
        return found

    def _body_cache(self) -> Path | None:
        if self.checked is None:
            return None
        name = hashlib.sha256(f"{self.schema}\0{self.workspace}".encode()).hexdigest()[:16]
        return self.checked.with_name(f"pg-state-{name}.json")

    def _kept_body(self) -> bytes | None:
        """The text of the state this machine read last (a hint: trusted only when the
        server names its sha256)."""
        path = self._body_cache()
        if path is None:
            return None
        try:
            return safefile.read_bytes(path, limit=MAX_KEPT)
        except (OSError, StateError):
            return None

    def _keep_body(self, raw: bytes) -> None:
        path = self._body_cache()
        if path is not None and len(raw) <= MAX_KEPT:
            with contextlib.suppress(OSError, StateError):
                write_cache(path, raw)

    def write(self, new: State, base: State | None, *, settles_journal: bool = False) -> State:
        if base is not None and new.lineage != base.lineage:
            raise StaleWrite(f"{self.display}: a state of another lineage is not written over")
        written = state.as_read(replace(new, serial=new.serial + 1))
        body = state.dumps(written)
        digest = hashlib.sha256(body).hexdigest()
        self._still_holding()
        # On the lock's own session when this command holds it: a lock taken away
        # (force-unlock, a server's timeout) then fails the write instead of racing it.
        try:
            return self._swap(written, body, digest, base, settles_journal)
        except psycopg.Error as exc:  # on the lock's session: said here, not as a bug
            raise StateError(
                f"{self.display}: the state could not be written ({said(exc)}); this apply's "
                "journal keeps its clones, and the next `voicectl apply` records them"
            ) from None

    def _swap(
        self, written: State, body: bytes, digest: str, base: State | None, settles_journal: bool
    ) -> State:
        """The compare-and-swap of :meth:`write`, in one transaction."""
        session = nullcontext(self._holding) if self._holding is not None else self._session()
        with session as conn, conn.transaction():
            row = conn.execute(
                sql.SQL("SELECT sha256 FROM {} WHERE workspace = %s FOR UPDATE").format(
                    self._table("states")
                ),
                [self.workspace],
            ).fetchone()
            if (row[0] if row else None) != self._digest(base):
                raise StaleWrite(stale_message(self.display, self._stored(conn), base))
            top = self._last_serial(conn, written.lineage)
            if top is not None and top >= written.serial:
                # The row was put back to an earlier version by hand: go on after the
                # last one kept, so that no two versions share a serial.
                written = replace(written, serial=top + 1)
                body = state.dumps(written)
                digest = hashlib.sha256(body).hexdigest()
            self._put(conn, written, body.decode(), digest, first=row is None)
            self._known = (written, digest)
            if settles_journal:  # folded into this state: gone with the same commit
                conn.execute(
                    sql.SQL("DELETE FROM {} WHERE workspace = %s").format(self._table("journal")),
                    [self.workspace],
                )
        self._keep_body(body)  # committed: the next read here need not fetch it
        return written

    def _last_serial(self, conn: psycopg.Connection[Any], lineage: str) -> int | None:
        row = conn.execute(
            sql.SQL("SELECT max(serial) FROM {} WHERE workspace = %s AND lineage = %s").format(
                self._table("state_versions")
            ),
            [self.workspace, lineage],
        ).fetchone()
        return None if row is None else row[0]

    def _put(
        self, conn: psycopg.Connection[Any], written: State, body: str, digest: str, first: bool
    ) -> None:
        who = lock.holder("", "")
        by = f"{who['user']}@{who['host']}"
        values = [self.workspace, written.lineage, written.serial, state.FORMAT_VERSION]
        if first:
            conn.execute(
                sql.SQL(
                    "INSERT INTO {} (workspace, lineage, serial, format_version, sha256, body, "
                    "written_by) VALUES (%s, %s, %s, %s, %s, %s, %s)"
                ).format(self._table("states")),
                [*values, digest, body, by],
            )
        else:
            conn.execute(
                sql.SQL(
                    "UPDATE {} SET lineage = %s, serial = %s, format_version = %s, sha256 = %s, "
                    "body = %s, written_by = %s, written_at = now() WHERE workspace = %s"
                ).format(self._table("states")),
                [*values[1:], digest, body, by, self.workspace],
            )
        conn.execute(  # the body copied by the server: sent once, not twice
            sql.SQL(
                "INSERT INTO {} (workspace, lineage, serial, sha256, body, written_by, git_commit)"
                " SELECT workspace, lineage, serial, sha256, body, written_by, %s FROM {}"
                " WHERE workspace = %s"
            ).format(self._table("state_versions"), self._table("states")),
            [self.commit(), self.workspace],
        )

    def _digest(self, base: State | None) -> str | None:
        """The sha256 of ``base``'s bytes: known when it is what this store read or wrote."""
        if base is None:
            return None
        if self._known is not None and self._known[0] is base:
            return self._known[1]
        return hashlib.sha256(state.dumps(base)).hexdigest()

    def _stored(self, conn: psycopg.Connection[Any]) -> State | None:
        row = conn.execute(
            sql.SQL("SELECT body FROM {} WHERE workspace = %s").format(self._table("states")),
            [self.workspace],
        ).fetchone()
        return None if row is None else state.parse(row[0].encode(), self.display, RESTORE)

    # -- the journal ---------------------------------------------------------------------

    def journal_lines(self) -> list[bytes]:
        """The journal of an apply not yet folded, as its lines arrived."""
        with self._session(create=False) as conn:
            if not self._ready:
                return []
            rows = conn.execute(
                sql.SQL("SELECT seq, line FROM {} WHERE workspace = %s ORDER BY seq").format(
                    self._table("journal")
                ),
                [self.workspace],
            ).fetchall()
        for position, (seq, line) in enumerate(rows):
            self._journal_row(seq, str(line), first=position == 0)
        return [str(row[1]).encode() for row in rows]

    def _journal_row(self, seq: int, line: str, first: bool) -> None:
        """Refuse a row no apply wrote: a row is never torn (a file's last line may be),
        so one that is not a journal line was written by someone else, and would make the
        next interrupted apply's journal unreadable."""
        try:
            record = jsontext.loads(line, strict=True)
        except ValueError:
            record = None
        kind = record.get("type") if isinstance(record, dict) else None
        if isinstance(kind, str) and (kind == "begin") == first:
            return
        table = f"{quoted(self.schema)}.journal"
        raise StateError(
            f"{self.display}: row {seq} of its journal is not "
            + ("the begin record an apply's journal starts with" if first else "a journal line")
            + " (written by hand, or by another program); nothing was changed. A person with "
            f"write access looks at `SELECT seq, line FROM {table} WHERE workspace = "
            f"'{self.workspace}' ORDER BY seq` and deletes the rows no apply wrote: the "
            "others may record paid clones"
        )

    def journal_add(self, line: bytes) -> None:
        """Keep one journal line, committed before this returns, through the lock's own
        session: a lock taken from this command (`force-unlock`) stops it here, before
        the clone the line announces is sent."""
        statement = sql.SQL("INSERT INTO {} (workspace, line) VALUES (%s, %s)").format(
            self._table("journal")
        )
        try:
            if self._holding is not None:
                self._holding.execute(statement, [self.workspace, line.decode()])
                return
        except psycopg.Error as exc:
            raise StateError(
                f"{self.display}: a journal line could not be kept there ({said(exc)}), so "
                "nothing more is sent; `voicectl apply` recovers what was"
            ) from None
        with self._session() as conn:
            conn.execute(statement, [self.workspace, line.decode()])

    def journal_clear(self) -> None:
        with self._session() as conn:
            conn.execute(
                sql.SQL("DELETE FROM {} WHERE workspace = %s").format(self._table("journal")),
                [self.workspace],
            )

    def versions(self) -> list[Version]:
        with self._session(create=False) as conn:
            if not self._ready:
                return []
            rows = conn.execute(
                sql.SQL(
                    "SELECT serial, lineage, to_char(written_at AT TIME ZONE 'UTC', "
                    '\'YYYY-MM-DD"T"HH24:MI:SS"Z"\'), sha256, written_by, git_commit FROM {} '
                    "WHERE workspace = %s ORDER BY written_at, serial"
                ).format(self._table("state_versions")),
                [self.workspace],
            ).fetchall()
        return [Version(*row) for row in rows]

    def pull(self, serial: int | None = None, lineage: str | None = None) -> bytes | None:
        """The bytes of the version ``serial`` of ``lineage`` (by default the current
        one's), else of the state stored now; None when there is no such version."""
        query = "SELECT body FROM {} WHERE workspace = %s"
        args: list[Any] = [self.workspace]
        table = "states"
        if serial is not None:
            table = "state_versions"
            query += " AND serial = %s AND lineage = "
            query += (
                "%s" if lineage is not None else "(SELECT lineage FROM {} WHERE workspace = %s)"
            )
            args += [serial, lineage if lineage is not None else self.workspace]
        elif lineage is not None:
            query += " AND lineage = %s"
            args.append(lineage)
        with self._session(create=False) as conn:
            if not self._ready:
                return None
            row = conn.execute(
                sql.SQL(query).format(self._table(table), self._table("states")), args
            ).fetchone()
        return None if row is None else str(row[0]).encode()
