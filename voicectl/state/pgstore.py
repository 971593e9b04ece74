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

import hashlib
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from voicectl.errors import StaleWrite, StateError
from voicectl.model import State
from voicectl.state import lock
from voicectl.state import statefile as state
from voicectl.state.store import Version, stale_message

SERVER_KEEPALIVES = (
    ("tcp_keepalives_idle", "10"),
    ("tcp_keepalives_interval", "5"),
    ("tcp_keepalives_count", "3"),
)

_TABLES = (
    """CREATE TABLE IF NOT EXISTS {s}.states (
        workspace text PRIMARY KEY,
        lineage text NOT NULL,
        serial bigint NOT NULL,
        format_version integer NOT NULL,
        sha256 text NOT NULL,
        body text NOT NULL,
        written_by text NOT NULL,
        written_at timestamptz NOT NULL DEFAULT now())""",
    """CREATE TABLE IF NOT EXISTS {s}.state_versions (
        workspace text NOT NULL,
        lineage text NOT NULL,
        serial bigint NOT NULL,
        sha256 text NOT NULL,
        body text NOT NULL,
        written_by text NOT NULL,
        git_commit text NOT NULL DEFAULT '',
        written_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (workspace, lineage, serial))""",
    """CREATE TABLE IF NOT EXISTS {s}.locks (
        workspace text PRIMARY KEY,
        lock_id text NOT NULL,
        holder jsonb NOT NULL,
        backend_pid integer NOT NULL,
        since timestamptz NOT NULL DEFAULT now())""",
)
_NAMES = ("states", "state_versions", "locks")


class PgStore:
    """The state of one workspace in one schema of a PostgreSQL database."""

    def __init__(
        self,
        conninfo: str,
        schema: str = "voicectl",
        workspace: str = "default",
        commit: Callable[[], str] = lambda: "",
    ) -> None:
        self.conninfo, self.schema, self.workspace = conninfo, schema, workspace
        self.display = f"the state in PostgreSQL (schema {schema}, workspace {workspace})"
        self.commit = commit
        self._ready = False
        self._holding: psycopg.Connection[Any] | None = None  # the lock's, while held
        self._keys = (f"voicectl:{schema}", workspace)  # the advisory lock's, by hashtext

    # -- connections and tables ---------------------------------------------------------

    def _connect(self) -> psycopg.Connection[Any]:
        try:
            conn = psycopg.connect(
                self.conninfo,
                autocommit=True,
                application_name="voicectl",
                connect_timeout=10,
                keepalives=1,
                keepalives_idle=10,
                keepalives_interval=5,
                keepalives_count=3,
            )
        except psycopg.Error as exc:
            raise StateError(f"{self.display}: cannot connect: {_said(exc)}") from None
        return conn

    @contextmanager
    def _session(self) -> Iterator[psycopg.Connection[Any]]:
        with self._connect() as conn:
            try:
                if not self._ready:
                    self._prepare(conn)
                yield conn
            except psycopg.Error as exc:
                raise StateError(f"{self.display}: {_said(exc)}") from None

    def _prepare(self, conn: psycopg.Connection[Any]) -> None:
        """Make the schema (unless it exists) and the tables (unless they exist), under a
        transaction lock of this schema only, so that two first runners do not race."""
        found = conn.execute(
            "SELECT to_regclass(%s), to_regclass(%s), to_regclass(%s)",
            [f"{_quoted(self.schema)}.{name}" for name in _NAMES],
        ).fetchone()
        if found is None or any(table is None for table in found):
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [self._keys[0]])
                exists = conn.execute(
                    "SELECT 1 FROM pg_namespace WHERE nspname = %s", [self.schema]
                ).fetchone()
                if exists is None:
                    conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(self.schema)))
                for statement in _TABLES:
                    conn.execute(sql.SQL(statement).format(s=sql.Identifier(self.schema)))
        self._ready = True

    def _table(self, name: str) -> sql.Composed:
        return sql.SQL("{}.{}").format(sql.Identifier(self.schema), sql.Identifier(name))

    # -- the state ----------------------------------------------------------------------

    def read(self) -> State | None:
        with self._session() as conn:
            row = conn.execute(
                sql.SQL("SELECT body FROM {} WHERE workspace = %s").format(self._table("states")),
                [self.workspace],
            ).fetchone()
        return None if row is None else state.parse(row[0].encode(), self.display)

    def write(self, new: State, base: State | None) -> State:
        if base is not None and new.lineage != base.lineage:
            raise StaleWrite(f"{self.display}: a state of another lineage is not written over")
        data = state.to_json(replace(new, serial=new.serial + 1))
        body = state.encoded(data)
        digest = hashlib.sha256(body).hexdigest()
        written = state.from_json(data)
        self._still_holding()
        with self._session() as conn, conn.transaction():
            row = conn.execute(
                sql.SQL("SELECT body, sha256 FROM {} WHERE workspace = %s FOR UPDATE").format(
                    self._table("states")
                ),
                [self.workspace],
            ).fetchone()
            expected = None if base is None else hashlib.sha256(state.dumps(base)).hexdigest()
            if (row[1] if row else None) != expected:
                stored = None if row is None else state.parse(row[0].encode(), self.display)
                raise StaleWrite(stale_message(self.display, stored, base))
            self._put(conn, written, body.decode(), digest, first=row is None)
        return written

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
        conn.execute(
            sql.SQL(
                "INSERT INTO {} (workspace, lineage, serial, sha256, body, written_by, git_commit)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s)"
            ).format(self._table("state_versions")),
            [self.workspace, written.lineage, written.serial, digest, body, by, self.commit()],
        )

    def versions(self) -> list[Version]:
        with self._session() as conn:
            rows = conn.execute(
                sql.SQL(
                    "SELECT serial, lineage, to_char(written_at AT TIME ZONE 'UTC', "
                    '\'YYYY-MM-DD"T"HH24:MI:SS"Z"\'), sha256, written_by, git_commit FROM {} '
                    "WHERE workspace = %s ORDER BY written_at, serial"
                ).format(self._table("state_versions")),
                [self.workspace],
            ).fetchall()
        return [Version(*row) for row in rows]

    def pull(self, serial: int | None = None) -> bytes | None:
        """The bytes of the version ``serial`` (of the current lineage), else of the state
        stored now; None when there is no such version."""
        query = "SELECT body FROM {} WHERE workspace = %s"
        args: list[Any] = [self.workspace]
        table = "states"
        if serial is not None:
            table = "state_versions"
            query += " AND serial = %s AND lineage = (SELECT lineage FROM {} WHERE workspace = %s)"
            args += [serial, self.workspace]
        with self._session() as conn:
            row = conn.execute(
                sql.SQL(query).format(self._table(table), self._table("states")), args
            ).fetchone()
        return None if row is None else str(row[0]).encode()

    # -- the lock -----------------------------------------------------------------------

    @contextmanager
    def locked(
        self, command: str, notice: Callable[[str], None], timeout: float = 0.0
    ) -> Iterator[None]:
        """The workspace's lock, held on a connection of its own for the block."""
        with self._connect() as conn:
            try:
                if not self._ready:
                    self._prepare(conn)
                for name, value in SERVER_KEEPALIVES:  # ignored over a Unix socket
                    conn.execute("SELECT set_config(%s, %s, false)", [name, value])
                self._wait(conn, notice, time.monotonic() + timeout, timeout)
                info = lock.holder(command, state.now())
                self._record_holder(conn, info, notice)
            except psycopg.Error as exc:
                raise StateError(f"{self.display}: {_said(exc)}") from None
            self._holding = conn
            try:
                yield
            finally:
                self._holding = None
                try:
                    conn.execute(
                        sql.SQL("DELETE FROM {} WHERE workspace = %s AND lock_id = %s").format(
                            self._table("locks")
                        ),
                        [self.workspace, info["id"]],
                    )
                    conn.execute(
                        "SELECT pg_advisory_unlock(hashtext(%s), hashtext(%s))", self._keys
                    )
                except psycopg.Error:
                    pass  # the session ends below, and the lock with it

    def _still_holding(self) -> None:
        """Refuse a write from under a lock whose session was ended (`force-unlock` from
        another machine): another runner may hold the lock now."""
        if self._holding is None:
            return
        try:
            self._holding.execute("SELECT 1")
        except psycopg.Error:
            raise StateError(
                f"{self.display}: this command's lock was taken from it (its database "
                "session ended: `voicectl force-unlock`?); nothing was written"
            ) from None

    def _try(self, conn: psycopg.Connection[Any]) -> bool:
        row = conn.execute(
            "SELECT pg_try_advisory_lock(hashtext(%s), hashtext(%s))", self._keys
        ).fetchone()
        return bool(row and row[0])

    def _wait(
        self,
        conn: psycopg.Connection[Any],
        notice: Callable[[str], None],
        until: float,
        timeout: float,
    ) -> None:
        if self._try(conn):
            return
        if timeout > 0:
            notice(f"waiting up to {timeout:g} s for the lock held by {self._holder_said()}")
        while time.monotonic() < until:
            time.sleep(min(0.25, max(0.0, until - time.monotonic())))
            if self._try(conn):
                return
        raise StateError(
            f"{self.display} is locked by {self._holder_said()}; wait for it to finish, or "
            "wait for it with `--lock-timeout DURATION` (the lock is freed when its holder's "
            "database session ends, however it ends)"
        )

    def _record_holder(
        self, conn: psycopg.Connection[Any], info: dict[str, Any], notice: Callable[[str], None]
    ) -> None:
        locks = self._table("locks")
        previous = conn.execute(
            sql.SQL("SELECT holder FROM {} WHERE workspace = %s").format(locks), [self.workspace]
        ).fetchone()
        if previous is not None:
            notice(f"the previous holder of the lock is gone: {lock.describe(previous[0])}")
        conn.execute(
            sql.SQL(
                "INSERT INTO {} (workspace, lock_id, holder, backend_pid) VALUES "
                "(%s, %s, %s, pg_backend_pid()) ON CONFLICT (workspace) DO UPDATE SET "
                "lock_id = EXCLUDED.lock_id, holder = EXCLUDED.holder, "
                "backend_pid = EXCLUDED.backend_pid, since = now()"
            ).format(locks),
            [self.workspace, info["id"], Jsonb(info)],
        )

    def _live_holder(self, conn: psycopg.Connection[Any]) -> tuple[dict[str, Any], int] | None:
        row = conn.execute(
            sql.SQL(
                "SELECT l.holder, l.backend_pid FROM {} l WHERE l.workspace = %s AND EXISTS "
                "(SELECT 1 FROM pg_locks p WHERE p.locktype = 'advisory' AND p.granted "
                "AND p.pid = l.backend_pid AND p.objsubid = 2 "
                "AND p.classid = hashtext(%s)::oid AND p.objid = hashtext(%s)::oid)"
            ).format(self._table("locks")),
            [self.workspace, *self._keys],
        ).fetchone()
        return None if row is None else (dict(row[0]), int(row[1]))

    def holder(self) -> dict[str, Any] | None:
        with self._session() as conn:
            live = self._live_holder(conn)
        return None if live is None else live[0]

    def _holder_said(self) -> str:
        try:
            info = self.holder()
        except StateError:
            info = None
        return lock.describe(info) if info else "another voicectl (its details not yet written)"

    def force_unlock(self, expected: str) -> dict[str, Any] | None:
        """End the session holding the lock whose id is ``expected`` (where this role may:
        ``pg_terminate_backend``); returns the holder's details, or None when unlocked."""
        with self._session() as conn:
            live = self._live_holder(conn)
            if live is None:
                return None
            info, pid = live
            if lock.lock_id(info) != expected:
                raise StateError(
                    f"the lock's id is {lock.lock_id(info)}, not {expected} "
                    f"({lock.describe(info)}); nothing was done"
                )
            try:
                ended = conn.execute("SELECT pg_terminate_backend(%s)", [pid]).fetchone()
            except psycopg.errors.InsufficientPrivilege:
                raise StateError(
                    f"this database role may not end session {pid}, which holds the lock "
                    f"({lock.describe(info)}): that takes the holder's own role, a member of "
                    "pg_signal_backend, or a superuser; or stop the holder's process"
                ) from None
            if not (ended and ended[0]):
                raise StateError(f"session {pid} could not be ended ({lock.describe(info)})")
        return info


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _said(exc: psycopg.Error) -> str:
    """What PostgreSQL said, on one line (libpq's messages may span several)."""
    text = str(exc).strip() or type(exc).__name__
    return " ".join(line.strip() for line in text.splitlines() if line.strip())
