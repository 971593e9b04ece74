"""The state in PostgreSQL against the state file, at scale, in one run.

    python -m bench.pgstore                 # 10,000 voices: writes bench/RESULTS-pg.md
    python -m bench.pgstore --quick         # a small N in seconds (the test suite runs it)

Two copies of one synthetic repository (bench/synth.py), one on each store, each
applied in full to bench/stub.py, then planned warm, alternately; a throwaway PostgreSQL
cluster on loopback (tests/pgcluster.py) holds the one store. The state write is timed
in this process: ``PgStore.write`` of the applied state against a bare compare-and-swap
of the same bytes through psycopg (an UPDATE of the row, guarded by its serial, in one
transaction), the floor of any store that keeps the state in one row: in a table of
PostgreSQL's defaults (judged), and in voicectl's own, which compresses with lz4.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from functools import partial
from pathlib import Path

import psycopg
import yaml

from bench import report, synth
from bench.harness import BENCH, Bench, interleaved
from bench.procs import BenchError
from bench.scale import environment
from bench.stub import running_stub
from tests.pgcluster import Cluster, running_cluster
from voicectl.state import statefile
from voicectl.state.pgstore import PgStore

SCHEMA = "bench"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--voices", type=int, default=None, help="N (default 10000; quick 60)")
    parser.add_argument("--quick", action="store_true", help="small N, one run each")
    parser.add_argument("--repeat", type=int, default=None, help="runs of each figure")
    parser.add_argument("--out", type=Path, default=BENCH / "RESULTS-pg.md")
    args = parser.parse_args(argv)
    args.voices = args.voices or (60 if args.quick else 10_000)
    args.repeat = args.repeat or (1 if args.quick else 3)
    args.per_file = 10 if args.quick else 50
    return args


def on_pg(root: Path) -> None:
    config = root / "voicectl.yaml"
    data = yaml.safe_load(config.read_text())
    data["backend"] = {"pg": {"schema": SCHEMA}}
    config.write_text(yaml.safe_dump(data, sort_keys=False))


def apply_both(b: Bench, file_root: Path, pg_root: Path, pg_env: dict[str, str]) -> None:
    n = b.args.voices
    with running_stub() as (base, ledger):
        file_apply = b.apply(file_root, base, "--parallelism", "8")
        env = {"COZE_API_BASE": base, "COZE_API_TOKEN": "pat_bench", **pg_env}
        pg_apply = b.voicectl(pg_root, "apply", "--auto-approve", "--parallelism", "8", env=env)
    b.check("each voice cloned once on each store", len(ledger.names) == 2 * n)
    b.figure(
        report.Figure(
            f"apply {n} at no latency, state in PostgreSQL",
            pg_apply.wall,
            file_apply.wall,
            "the same apply, state file",
            None,
        )
    )


def plan_both(b: Bench, file_root: Path, pg_root: Path, pg_env: dict[str, str]) -> None:
    for root, env in ((file_root, {}), (pg_root, pg_env)):
        b.voicectl(root, "plan", env=env)  # caches warm on both
    floor, subject, _ = interleaved(
        b.args.repeat,
        lambda: b.voicectl(file_root, "plan", "--detailed-exitcode"),
        lambda: b.voicectl(pg_root, "plan", "--detailed-exitcode", env=pg_env),
    )
    b.check("warm plan on PostgreSQL: no changes", "No changes" in subject.out)
    b.figure(
        report.Figure(
            f"warm plan of {b.args.voices} voices, state in PostgreSQL",
            subject.wall,
            floor.wall,
            "the same plan, state file",
            1.2,
        )
    )


def _timed(repeat: int, step: Callable[[], object]) -> float:
    walls = []
    for _ in range(repeat):
        started = time.perf_counter()
        step()
        walls.append(time.perf_counter() - started)
    return min(walls)


def write_figure(b: Bench, cluster: Cluster) -> None:
    """``PgStore.write`` of the applied state, against a bare compare-and-swap of the
    same bytes through psycopg, each on a connection of its own, as a command makes: into
    a table of PostgreSQL's defaults (the floor judged), and into voicectl's own table,
    whose text is compressed with lz4 (reported: the server's share is smaller there)."""
    store = PgStore(cluster.conninfo(), SCHEMA, "default")
    current = store.read()
    if current is None:
        raise BenchError("the PostgreSQL store holds no state after the apply")
    body = statefile.dumps(replace(current, serial=current.serial + 1)).decode()
    holder = {"state": current}

    def voicectl_write() -> None:
        holder["state"] = store.write(holder["state"], base=holder["state"])

    cluster.execute(
        f"CREATE TABLE {SCHEMA}.floor (workspace text PRIMARY KEY, serial bigint, body text)",
        f"INSERT INTO {SCHEMA}.floor VALUES ('floor', 0, '')",
        f"INSERT INTO {SCHEMA}.states (workspace, lineage, serial, format_version, sha256, "
        f"body, written_by) VALUES ('floor', 'x', 0, 2, '', '', 'bench')",
    )
    walls: dict[str, list[float]] = {"floor": [], "states": [], "voicectl": []}
    for _ in range(b.args.repeat * 3):  # interleaved: a busy moment slows all three
        for table in ("floor", "states"):
            walls[table].append(_timed(1, partial(_bare_write, cluster, table, body)))
        walls["voicectl"].append(_timed(1, voicectl_write))
    floors, subject = {k: min(v) for k, v in walls.items()}, min(walls["voicectl"])
    name = f"state write of {b.args.voices} voices ({len(body) / 1e6:.1f} MB)"
    b.figure(
        report.Figure(
            name, subject, floors["floor"], "bare compare-and-swap, a table of defaults", 2.0
        )
    )
    b.figure(
        report.Figure(name, subject, floors["states"], "the same, in voicectl's table (lz4)", None)
    )


def _bare_write(cluster: Cluster, table: str, body: str) -> None:
    """An UPDATE of the row, guarded by its serial, in one transaction."""
    with psycopg.connect(cluster.conninfo(), autocommit=True) as conn, conn.transaction():
        row = conn.execute(
            f"SELECT serial FROM {SCHEMA}.{table} WHERE workspace = 'floor' FOR UPDATE"
        ).fetchone()
        serial = row[0] if row else 0
        conn.execute(
            f"UPDATE {SCHEMA}.{table} SET body = %s, serial = %s WHERE workspace = 'floor' "
            "AND serial = %s",
            [body, serial + 1, serial],
        )


def markdown(b: Bench, machine: dict[str, object], wall: float) -> str:
    return report.page(
        "voicectl's state in PostgreSQL: benchmark results",
        f"Written by `python -m bench.pgstore` ({wall:.0f} s in all), beside bench/RESULTS.md:"
        " every figure is the best of a few runs, against a floor measured in the same run.",
        machine,
        b.figures,
        b.checks,
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    machine = report.machine()
    with (
        tempfile.TemporaryDirectory(prefix="voicectl-pgbench-") as tmp,
        running_cluster() as cluster,
    ):
        work = Path(tmp)
        b = Bench(args, work, environment())
        print(f"generating {args.voices} voices in {work}", flush=True)
        repo = synth.make_repo(work / "file", args.voices, args.per_file)
        pg_repo = synth.subset(repo, args.voices, work / "pg")
        on_pg(pg_repo.root)
        pg_env = {"VOICECTL_PG_CONN_STR": cluster.conninfo()}
        try:
            apply_both(b, repo.root, pg_repo.root, pg_env)
            plan_both(b, repo.root, pg_repo.root, pg_env)
            write_figure(b, cluster)
        except BenchError as exc:
            b.check("every command ran as expected", False, str(exc).splitlines()[0])
            print(exc, file=sys.stderr)
    machine["load_after"] = report.load()
    args.out.write_text(markdown(b, machine, time.perf_counter() - started), encoding="utf-8")
    print(f"wrote {args.out}")
    return 0 if all(c.ok for c in b.checks) else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())
