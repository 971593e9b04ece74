"""PostgreSQL's side of the state store: connections, voicectl's tables, and the words
for what the server says (see :mod:`voicectl.state.pgstore`)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from voicectl.errors import StateError

SERVER_KEEPALIVES = (
    ("tcp_keepalives_idle", "10"),
    ("tcp_keepalives_interval", "5"),
    ("tcp_keepalives_count", "3"),
)

TABLES = (
    """CREATE TABLE IF NOT EXISTS {s}.states (
        workspace text PRIMARY KEY,
        lineage text NOT NULL,
        serial bigint NOT NULL,
        format_version integer NOT NULL,
        sha256 text NOT NULL,
        body text {c} NOT NULL,
        written_by text NOT NULL,
        written_at timestamptz NOT NULL DEFAULT now())""",
    """CREATE TABLE IF NOT EXISTS {s}.state_versions (
        workspace text NOT NULL,
        lineage text NOT NULL,
        serial bigint NOT NULL,
        sha256 text NOT NULL,
        body text {c} NOT NULL,
        written_by text NOT NULL,
        git_commit text NOT NULL DEFAULT '',
        written_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (workspace, lineage, serial))""",
    """CREATE TABLE IF NOT EXISTS {s}.journal (
        workspace text NOT NULL,
        seq bigserial,
        line text NOT NULL,
        PRIMARY KEY (workspace, seq))""",
    """CREATE TABLE IF NOT EXISTS {s}.locks (
        workspace text PRIMARY KEY,
        lock_id text NOT NULL,
        holder jsonb NOT NULL,
        backend_pid integer NOT NULL,
        since timestamptz NOT NULL DEFAULT now())""",
)
NAMES = ("states", "state_versions", "journal", "locks")
# A state's text compressed with lz4 where the server has it (PostgreSQL 14 and later,
# built with it, as Debian's and the official images are): a bare write of 10,000 voices
# takes 0.06 s there against pglz's 0.13 s (bench/RESULTS-pg.md, its two floors).
LZ4 = "SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'"


class PgBase:
    """A workspace in a schema of a PostgreSQL database: its sessions and tables."""

    def __init__(
        self,
        conninfo: str,
        schema: str = "voicectl",
        workspace: str = "default",
        commit: Callable[[], str] = lambda: "",
        source: str = "the PostgreSQL connection string",
        checked: Path | None = None,
    ) -> None:
        self.conninfo, self.schema, self.workspace = conninfo, schema, workspace
        self.source = source  # where the connection string came from, for messages
        self.checked = checked  # this machine's cache of states found valid
        self._known: tuple[object, str] | None = None  # a state read or written: its sha256
        self.display = f"the state in PostgreSQL (schema {schema}, workspace {workspace})"
        self.commit = commit
        self._ready = False
        self._holding: psycopg.Connection[Any] | None = None  # the lock's, while held
        self._keys = (f"voicectl:{schema}", workspace)  # the advisory lock's, by hashtext

    # -- connections and tables ---------------------------------------------------------

    def _connect(self) -> psycopg.Connection[Any]:
        try:  # libpq quotes a string it cannot parse: a password would be in the message
            options = conninfo_to_dict(self.conninfo)
        except psycopg.Error:
            raise StateError(
                f"{self.source}: not a valid libpq connection string or URI (not shown: "
                "it may hold a password)"
            ) from None
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
            message = redacted(said(exc), options)
            raise StateError(f"{self.display}: cannot connect ({self.source}): {message}") from None
        return conn

    @contextmanager
    def _session(self, create: bool = True) -> Iterator[psycopg.Connection[Any]]:
        """A connection, the tables made first where ``create`` (a write); for a read,
        ``self._ready`` False after it means there are none yet: nothing stored."""
        with self._connect() as conn:
            try:
                if not self._ready:
                    self._prepare(conn, create)
                yield conn
            except psycopg.Error as exc:
                raise StateError(f"{self.display}: {said(exc)}") from None

    def _prepare(self, conn: psycopg.Connection[Any], create: bool = True) -> None:
        """Make the schema (unless it exists) and the tables (unless they exist), under a
        transaction lock of this schema only, so that two first runners do not race. A
        read makes nothing: a role that may only SELECT reads "nothing yet"."""
        found = conn.execute(
            "SELECT to_regclass(%s), to_regclass(%s), to_regclass(%s), to_regclass(%s)",
            [f"{quoted(self.schema)}.{name}" for name in NAMES],
        ).fetchone()
        if found is not None and all(table is not None for table in found):
            self._ready = True
            return
        if not create:
            return
        try:
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [self._keys[0]])
                exists = conn.execute(
                    "SELECT 1 FROM pg_namespace WHERE nspname = %s", [self.schema]
                ).fetchone()
                if exists is None:
                    conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(self.schema)))
                lz4 = conn.execute(LZ4).fetchone()
                compression = sql.SQL("COMPRESSION lz4" if lz4 and lz4[0] else "")
                for statement in TABLES:
                    conn.execute(
                        sql.SQL(statement).format(s=sql.Identifier(self.schema), c=compression)
                    )
        except psycopg.errors.InsufficientPrivilege as exc:
            raise StateError(
                f"{self.display}: this role may not make voicectl's tables ({said(exc)}); "
                "the first apply needs a role with CREATE on the database, or on the "
                "schema when it exists"
            ) from None
        self._ready = True

    def _table(self, name: str) -> sql.Composed:
        return sql.SQL("{}.{}").format(sql.Identifier(self.schema), sql.Identifier(name))


def quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def said(exc: psycopg.Error) -> str:
    """What PostgreSQL said, on one line (libpq's messages may span several)."""
    text = str(exc).strip() or type(exc).__name__
    return " ".join(line.strip() for line in text.splitlines() if line.strip())


def redacted(message: str, options: Mapping[str, object]) -> str:
    """libpq's message with every option value that is not plainly a name or a number
    (a password, or one a typo ran into a host or a port: "host=db password=x" without
    its blank) shown as its option's name instead."""
    for key, value in options.items():
        text = str(value)
        if text and (key in ("password", "sslpassword") or not _PLAIN.fullmatch(text)):
            message = message.replace(text, f"[{key}]")
    return _SECRET.sub(r"\1=[redacted]", message)


_PLAIN = re.compile(r"[A-Za-z0-9._-]+")
_SECRET = re.compile(r"(password)\s*=\s*\S+", re.IGNORECASE)
