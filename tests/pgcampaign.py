"""The fault campaign over two runners and PostgreSQL: many applies of one repository
from two clones of it (two CI runners), its state in one PostgreSQL workspace, with
random latency, ambiguous 502s, and SIGKILLs of either runner mid-apply; then applies
until one ends well. After each run: every take cloned exactly as often as declared (0
double clones), every voice id Coze holds is in the state (0 lost), nothing pending.

    python -m tests.pgcampaign --runs 100 --seed 1      # the full campaign
    (tests/test_campaign.py runs a few as part of the suite)
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import yaml

from tests.campaign import UNANSWERED_WAIT, Emulator, write_take
from tests.pgcluster import Cluster, running_cluster
from voicectl.emulator.server import running_emulator

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Tally:
    runs: int = 0
    applies: int = 0
    kills: int = 0
    clones: int = 0
    double_clones: int = 0
    lost_ids: int = 0
    violations: list[str] = field(default_factory=list)


def runner_repo(root: Path, schema: str, takes: dict[str, float]) -> dict[str, str]:
    """A clone of the repository: the same declarations and takes; returns sha by address."""
    (root / "voices").mkdir(parents=True, exist_ok=True)
    (root / "audio").mkdir(exist_ok=True)
    config = {
        "defaults": {"language": "en", "space": "7350000000000000001"},
        "backend": {"pg": {"schema": schema}},
    }
    (root / "voicectl.yaml").write_text(yaml.safe_dump(config))
    voices, shas = {}, {}
    for address, tone in takes.items():
        shas[address] = write_take(root / "audio" / f"{address}.wav", tone)
        voices[address] = {
            "name": f"Voice {address} {schema}",
            "audio": f"../audio/{address}.wav",
            "text": f"The take of {address}.",
        }
    (root / "voices" / "v.yaml").write_text(yaml.safe_dump({"voices": voices}))
    return shas


def apply(root: Path, env: dict[str, str], *extra: str) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "voicectl", "-C", str(root), "apply", "--auto-approve"]
    return subprocess.Popen(
        [*command, *extra],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        cwd=ROOT,
    )


def round_of(rng: random.Random, roots: list[Path], env: dict[str, str], tally: Tally) -> None:
    """Both runners apply at once; either may be killed mid-way."""
    procs = [
        apply(root, env, "--parallelism", str(rng.randint(1, 4)), "--lock-timeout", lock)
        for root, lock in zip(
            roots, rng.choice([("0", "0"), ("0", "60"), ("60", "60")]), strict=True
        )
    ]
    tally.applies += 2
    if rng.random() < 0.6:
        time.sleep(rng.uniform(0.0, 0.8))
        victim = rng.choice(procs)
        if victim.poll() is None:
            victim.send_signal(signal.SIGKILL)
            tally.kills += 1
    try:
        for proc in procs:
            proc.communicate(timeout=300)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()


def converge(rng: random.Random, roots: list[Path], env: dict[str, str], tally: Tally) -> str:
    """Applies from either runner until one ends well; the last error otherwise."""
    said = ""
    for _ in range(6):
        proc = apply(rng.choice(roots), env, "--lock-timeout", "60")
        _, err = proc.communicate(timeout=300)
        tally.applies += 1
        if proc.returncode == 0:
            return ""
        said = err.decode(errors="replace").strip().splitlines()[-1:][0] if err else "?"
        time.sleep(UNANSWERED_WAIT + 0.1)  # a clone cut by a kill: out of Coze's hands
    return said


def stored(cluster: Cluster, schema: str) -> tuple[dict[str, Any] | None, int]:
    with psycopg.connect(cluster.conninfo()) as conn:
        row = conn.execute(f'SELECT body FROM "{schema}".states').fetchone()
        journal = conn.execute(f'SELECT count(*) FROM "{schema}".journal').fetchone()
    body = json.loads(row[0]) if row else None
    return body, int(journal[0]) if journal else 0


def check(
    tally: Tally, coze: Emulator, cluster: Cluster, schema: str, wanted: Counter[str]
) -> None:
    problems = []
    ledger = coze.ledger()
    tally.clones += len(ledger)
    cloned = Counter(e["audio_sha256"] for e in ledger)
    for sha in set(cloned) | set(wanted):
        extra = cloned[sha] - wanted[sha]
        if extra > 0:
            tally.double_clones += extra
        if extra:
            problems.append(f"take {sha[:12]} cloned {cloned[sha]}x, wanted {wanted[sha]}")
    state, journal = stored(cluster, schema)
    if state is None:
        problems.append("no state in PostgreSQL")
        state = {"voices": {}, "orphans": []}
    held = {r["voice_id"] for r in state["voices"].values()}
    held |= {r["voice_id"] for r in state["orphans"]}
    lost = {e["voice_id"] for e in ledger} - held
    tally.lost_ids += len(lost)
    problems += [f"voice {voice_id} is on Coze, not in the state" for voice_id in sorted(lost)]
    if journal:
        problems.append(f"{journal} journal line(s) left in PostgreSQL")
    tally.violations += [f"{schema}: {p}" for p in problems]


def one_run(
    n: int, rng: random.Random, cluster: Cluster, coze: Emulator, work: Path, tally: Tally
) -> None:
    coze.reset()
    schema = f"run{n}"
    takes = {f"v{i}": 200.0 + 37 * i + n for i in range(rng.randint(2, 6))}
    roots = [work / schema / "one", work / schema / "two"]
    shas = {}
    for root in roots:
        shas = runner_repo(root, schema, takes)
    wanted: Counter[str] = Counter(shas.values())
    env = {**coze.env(), "VOICECTL_PG_CONN_STR": cluster.conninfo()}
    for round_number in range(rng.randint(1, 2)):
        if round_number:  # the second: retrain some voices, in both runners' clones
            for address in rng.sample(sorted(takes), k=rng.randint(1, len(takes))):
                takes[address] += 1000
            for root in roots:
                shas = runner_repo(root, schema, takes)
            wanted.update(sha for sha in shas.values() if sha not in wanted)
        latency = rng.choice([0, 50, 250])
        faults: dict[str, Any] = {"latency_ms": latency}
        if rng.random() < 0.3:  # a clone answered 502: its outcome unknown to the runner
            faults["fail"] = {"code": 5000, "http_status": 502, "count": 1, "endpoint": "clone"}
        coze.faults(**faults)
        round_of(rng, roots, env, tally)
        coze.clear_faults()
        time.sleep(UNANSWERED_WAIT + 0.1)
        last = converge(rng, roots, env, tally)
        if last:
            tally.violations.append(f"{schema}: never converged: {last}")
    check(tally, coze, cluster, schema, wanted)
    tally.runs += 1
    shutil.rmtree(work / schema, ignore_errors=True)


def campaign(runs: int, seed: int, log: Any = print) -> Tally:
    rng = random.Random(seed)
    tally = Tally()
    with (
        tempfile.TemporaryDirectory(prefix="voicectl-pgcampaign-") as tmp,
        running_cluster() as cluster,
        running_emulator(Path(tmp) / "emulator") as base,
        Emulator(base) as coze,
    ):
        for n in range(runs):
            seen = len(tally.violations)
            one_run(n, rng, cluster, coze, Path(tmp), tally)
            for violation in tally.violations[seen:]:
                log(f"run {n}: {violation}")
    return tally


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    tally = campaign(args.runs, args.seed)
    print(
        f"{tally.runs} runs, {tally.applies} applies, {tally.kills} kills, {tally.clones} "
        f"clones, {tally.double_clones} double clones, {tally.lost_ids} lost ids, "
        f"{len(tally.violations)} violations, {time.perf_counter() - started:.1f} s"
    )
    for violation in tally.violations:
        print(f"  {violation}")
    return 0 if not tally.violations else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())
