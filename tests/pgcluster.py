"""A throwaway PostgreSQL cluster for the tests: initdb and pg_ctl into a temporary
directory, listening on a loopback port only, stopped and removed at the end.

PostgreSQL refuses to run as root: as root, its programs run as ``nobody`` (through
``setpriv``), in a directory of nobody's. No mocks: the store under test talks to a real
server, as a team's runners would.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

SUPERUSER = "postgres"
INITDB = ("--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync")


def _program(name: str) -> str:
    found = shutil.which(name) or next(
        iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None
    )
    if found is None:
        raise RuntimeError(
            f"{name} not found: install PostgreSQL's server (Debian: apt-get install "
            "postgresql); .ci/run does"
        )
    return found


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Cluster:
    def __init__(self, base: Path, port: int) -> None:
        self.base, self.port = base, port

    def conninfo(self, user: str = SUPERUSER, dbname: str = "postgres") -> str:
        return f"host=127.0.0.1 port={self.port} user={user} dbname={dbname}"

    def execute(self, *statements: str) -> None:
        """Run ``statements`` as the superuser."""
        with psycopg.connect(self.conninfo(), autocommit=True) as conn:
            for statement in statements:
                conn.execute(statement.encode())


def _as_postgres() -> list[str]:
    if os.geteuid() != 0:
        return []
    return ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"]


@contextmanager
def running_cluster() -> Iterator[Cluster]:
    base = Path(tempfile.mkdtemp(prefix="voicectl-pg-"))
    if os.geteuid() == 0:
        os.chown(base, 65534, 65534)  # nobody: PostgreSQL will not run as root
    data = base / "data"
    run_as = _as_postgres()
    subprocess.run(
        [*run_as, _program("initdb"), "-D", str(data), "-U", SUPERUSER, *INITDB],
        check=True,
        capture_output=True,
    )
    options = "-c listen_addresses=127.0.0.1 -c unix_socket_directories='' -c fsync=off"
    options += " -c synchronous_commit=off -c full_page_writes=off"
    port = 0
    for _ in range(5):  # a port taken between the probe and the start: another one
        port = _free_port()
        started = subprocess.run(
            [
                *run_as,
                _program("pg_ctl"),
                "-D",
                str(data),
                "-l",
                str(base / "log"),
                "-w",
                "-t",
                "60",
                "-o",
                f"{options} -p {port}",
                "start",
            ],
            capture_output=True,
        )
        if started.returncode == 0:
            break
    else:
        log = (base / "log").read_text(errors="replace")
        raise RuntimeError(f"PostgreSQL did not start: {log[-2000:]}")
    try:
        yield Cluster(base, port)
    finally:
        subprocess.run(
            [*run_as, _program("pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
            capture_output=True,
        )
        for _ in range(50):
            try:
                shutil.rmtree(base)
                break
            except OSError:
                time.sleep(0.1)
