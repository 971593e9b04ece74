"""Scale benchmark: plan and apply N voices, each figure as a ratio to a floor of the same run.

    python -m bench.scale                      # N = 10,000 voices; writes bench/RESULTS.md
    python -m bench.scale --voices 2000 --out /tmp/RESULTS.md
    python -m bench.scale --quick              # a small N in seconds (the test suite runs it)
    python -m bench.scale --profile /tmp/prof  # also profile the commands, every thread

It generates a synthetic voice repository (bench/synth.py), commits it to git, and runs
the real CLI (``python -m voicectl``) as a subprocess for every figure, so Python's start
and imports count, as they do for a user. Each floor (bench/floors.py) is also its own
process, run next to what it is compared with; the machine is shared, so every figure is
the best of a few runs and only the ratios mean much. Correctness is checked all along
(exit codes, clone counts, state sizes); any failure exits 1 after writing the results.

The figures, by what they measure: bench/planning.py, bench/applying.py and
bench/footprint.py (start-up, memory); bench/harness.py is how each is run and kept.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

from bench import profiles, report, synth
from bench.applying import bench_applies, bench_latency
from bench.footprint import bench_rss, bench_version
from bench.harness import BENCH, Bench
from bench.planning import bench_cold, bench_fresh_clone, bench_warm
from bench.procs import STATE, BenchError

ROOT = BENCH.parent


@contextmanager
def workdir(keep: Path | None) -> Iterator[Path]:
    if keep is not None:
        shutil.rmtree(keep, ignore_errors=True)
        keep.mkdir(parents=True)
        yield keep
        return
    with tempfile.TemporaryDirectory(prefix="voicectl-bench-") as tmp:
        yield Path(tmp)


def environment() -> dict[str, str]:
    drop = ("VOICECTL_DEBUG", "COZE_API_BASE", "COZE_API_TOKEN")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    env["CI"] = "1"  # plain progress lines, no terminal bar
    # No token: plan stays offline (with one it may read the account first); the
    # applies get a token and the server's URL.
    return env


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--voices", type=int, default=None, help="N (default 10000; quick 60)")
    parser.add_argument("--quick", action="store_true", help="small N, one run each")
    parser.add_argument("--per-file", type=int, default=None, help="voices per YAML file")
    parser.add_argument("--audio-kb", type=float, default=40.0, help="size of each take")
    parser.add_argument("--parallelism", type=int, default=8)
    parser.add_argument("--latency-ms", type=int, default=None, help="default 200; quick 20")
    parser.add_argument("--latency-voices", type=int, default=None, help="default 1000")
    parser.add_argument("--repeat", type=int, default=None, help="runs of the cheap figures")
    parser.add_argument("--repeat-cold", type=int, default=None, help="runs of the cold ones")
    parser.add_argument("--out", type=Path, default=BENCH / "RESULTS.md")
    parser.add_argument("--json", type=Path, default=None, help="also write the raw figures")
    parser.add_argument("--workdir", type=Path, default=None, help="keep the repos here")
    parser.add_argument("--profile", type=Path, default=None, help="profile into this dir")
    args = parser.parse_args(argv)
    quick = args.quick
    args.voices = args.voices or (60 if quick else 10_000)
    args.per_file = args.per_file or (10 if quick else 50)
    args.latency_ms = args.latency_ms if args.latency_ms is not None else (20 if quick else 200)
    args.latency_voices = args.latency_voices or (20 if quick else 1000)
    args.repeat = args.repeat or (1 if quick else 3)
    args.repeat_cold = args.repeat_cold or (1 if quick else 2)
    if args.voices % args.per_file:
        parser.error("--voices must be a multiple of --per-file")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    machine = report.machine()
    with workdir(args.workdir) as work:
        b = Bench(args, work, environment())
        print(f"generating {args.voices} voices in {work}", flush=True)
        t0 = time.perf_counter()
        repo = synth.make_repo(work / "repo", args.voices, args.per_file, args.audio_kb)
        synth.git_commit_all(repo.root, "voices")
        b.extra["generate_s"] = time.perf_counter() - t0
        b.extra["audio_mb"] = repo.audio_bytes / 1e6
        b.extra["declaration_files"] = len(repo.files)
        error = ""
        try:
            bench_version(b)
            bench_cold(b, repo)
            bench_applies(b, repo)
            synth.git(repo.root, "add", STATE)
            synth.git(repo.root, "commit", "-q", "--no-verify", "-m", "state")
            bench_warm(b, repo)
            bench_fresh_clone(b, repo)
            bench_latency(b, repo)
            bench_rss(b)
            b.extra["figures_wall_s"] = time.perf_counter() - started
            if args.profile is not None:
                b.extra["profiles"] = profiles.profile_all(b, repo, args.profile)
        except BenchError as exc:
            error = str(exc)
            b.check("every command ran as expected", False, error.splitlines()[0])
            print(error, file=sys.stderr)
    b.extra["bench_wall_s"] = time.perf_counter() - started
    machine["load_after"] = report.load()
    text = report.markdown(args, machine, b.figures, b.checks, b.commands, b.extra, argv)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    if args.json is not None:
        payload = {
            "figures": [asdict(f) for f in b.figures],
            "checks": [asdict(c) for c in b.checks],
            "extra": b.extra,
            "machine": machine,
        }
        args.json.write_text(json.dumps(payload, indent=2, default=str))
    print(f"wrote {args.out} in {b.extra['bench_wall_s']:.0f} s")
    return 0 if all(c.ok for c in b.checks) and not error else 1


if __name__ == "__main__":
    sys.exit(main())
