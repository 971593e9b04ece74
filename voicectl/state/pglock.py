"""The lock of a state in PostgreSQL: a session-level advisory lock per schema and
workspace, on a connection of its own, its holder a row the next runner reads (see
:mod:`voicectl.state.pgstore`)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from voicectl.errors import StateError
from voicectl.state import lock
from voicectl.state import statefile as state
from voicectl.state.pgbase import SERVER_KEEPALIVES, PgBase, said


class PgLock(PgBase):
    """The lock's part of the PostgreSQL store."""

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
                if conn.info.server_version >= 140000:
                    # This session idles while clones are sent: a server's (or a role's)
                    # idle_session_timeout would end it, and the lock with it, unseen.
                    conn.execute("SELECT set_config('idle_session_timeout', '0', false)")
                self._wait(conn, notice, time.monotonic() + timeout, timeout)
                info = lock.holder(command, state.now())
                self._record_holder(conn, info, notice)
            except psycopg.Error as exc:
                raise StateError(f"{self.display}: {said(exc)}") from None
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
                "session ended: a server restart, `voicectl force-unlock`, a network cut); "
                "nothing was written"
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

    def _no_unnamed_holder(self, conn: psycopg.Connection[Any]) -> None:
        """Refuse when a session holds the lock without a holder row (a voicectl this
        instant, or another program holding the key): it is locked, and has no id."""
        row = conn.execute(
            "SELECT pid, backend_start FROM pg_locks JOIN pg_stat_activity USING (pid) "
            "WHERE locktype = 'advisory' AND granted AND objsubid = 2 "
            "AND classid = hashtext(%s)::oid AND objid = hashtext(%s)::oid",
            list(self._keys),
        ).fetchone()
        if row is not None:
            raise StateError(
                f"{self.display}: the lock is held by database session {row[0]}, which has "
                "said nothing of itself (a voicectl starting this instant, or another program "
                "holding voicectl's lock key); it has no lock id to force. Try again in a "
                f"moment; if it stays, a person may end it: SELECT pg_terminate_backend({row[0]})"
            )

    def holder(self) -> dict[str, Any] | None:
        with self._session(create=False) as conn:
            live = self._live_holder(conn) if self._ready else None
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
        with self._session(create=False) as conn:
            live = self._live_holder(conn) if self._ready else None
            if live is None:
                self._no_unnamed_holder(conn)
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
