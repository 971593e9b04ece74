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
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench import report, synth
from bench.procs import STATE, TOKEN, BenchError, Proc, clear_cache, run
from bench.stub import running_stub
from voicectl.emulator.admin import Admin
from voicectl.emulator.server import running_emulator

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent


@dataclass
class Bench:
    args: argparse.Namespace
    work: Path
    env: dict[str, str]
    figures: list[report.Figure] = field(default_factory=list)
    checks: list[report.Check] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def voicectl(
        self, root: Path, *args: str, codes: Sequence[int] = (0,), env: dict[str, str] | None = None
    ) -> Proc:
        cmd = [sys.executable, "-m", "voicectl", "-C", str(root), *args]
        return run(cmd, {**self.env, **(env or {})}, codes)

    def apply(self, root: Path, base: str, *args: str) -> Proc:
        """``voicectl apply --auto-approve`` against the Coze at ``base``."""
        env = {"COZE_API_BASE": base, "COZE_API_TOKEN": TOKEN}
        return self.voicectl(root, "apply", "--auto-approve", *args, env=env)

    def floor(self, kind: str, *args: str) -> Proc:
        return run([sys.executable, str(BENCH / "floors.py"), kind, *args], self.env)

    def check(self, name: str, ok: bool, detail: str = "") -> None:
        self.checks.append(report.Check(name, ok, detail))
        print(f"  check {'ok  ' if ok else 'FAIL'} {name}{': ' + detail if detail else ''}")

    def figure(self, figure: report.Figure) -> None:
        self.figures.append(figure)
        print("  " + report.line(figure), flush=True)

    def difference(self, figure: report.Figure) -> None:
        """A figure that is one time minus another: at a small N the two are within noise
        of each other, and a difference at or below zero measures nothing."""
        if figure.value > 0:
            self.figure(figure)
        else:
            print(f"  {figure.name}: not measurable at this N ({figure.value:+.3f} s)")

    def note(self, command: str) -> None:
        self.commands.append(command)


def best(runs: Sequence[Proc]) -> Proc:
    return min(runs, key=lambda p: p.wall)


def interleaved(
    repeat: int, floor: Callable[[], Proc], subject: Callable[[], Proc]
) -> tuple[Proc, Proc, list[Proc]]:
    """Alternate floor and subject so both see the same load; the best of each, and all runs."""
    floors, subjects = [], []
    for _ in range(repeat):
        floors.append(floor())
        subjects.append(subject())
    return best(floors), best(subjects), subjects


def state_voices(root: Path) -> int:
    try:
        data = json.loads((root / STATE).read_bytes())
    except FileNotFoundError:
        return 0
    return len(data.get("voices", {}))


def apply_sizes(n: int, per_file: int) -> list[int]:
    """About N/10, N/2 and N, each on a declaration file boundary."""
    sizes = {n}
    for part in (n // 10, n // 2):
        rounded = max(per_file, part // per_file * per_file)
        if rounded < n:
            sizes.add(rounded)
    return sorted(sizes)


# -- the figures ---------------------------------------------------------------------------


def bench_version(b: Bench) -> None:
    print("voicectl --version against python -c 'import click'", flush=True)
    b.note("python -m voicectl --version   vs   python -c 'import click'")
    floor_cmd = [sys.executable, "-c", "import click"]
    floor, subject, _ = interleaved(
        b.args.repeat + 4,
        lambda: run(floor_cmd, b.env),
        lambda: run([sys.executable, "-m", "voicectl", "--version"], b.env),
    )
    b.check("voicectl --version prints its version", subject.out.startswith("voicectl "))
    b.figure(report.Figure("voicectl --version", subject.wall, floor.wall, "import click", 2.0))


def bench_cold(b: Bench, repo: synth.Repo) -> None:
    print(f"cold plan of {repo.voices} voices (no cache, empty state)", flush=True)
    b.note(f"python bench/floors.py hash REPO   vs   rm -r .voicectl; {_plan_cmd()}")
    root = repo.root

    def cold() -> Proc:
        clear_cache(root)
        return b.voicectl(root, "plan", "--detailed-exitcode", codes=(2,))

    floor, subject, runs = interleaved(b.args.repeat_cold, lambda: b.floor("hash", str(root)), cold)
    found = re.search(r"(\d+) to create", subject.out)
    creates = int(found.group(1)) if found else 0
    b.check("cold plan shows every voice as a create", creates == repo.voices, f"{creates} creates")
    b.figure(
        report.Figure(
            "cold plan (no cache): the whole command",
            subject.wall,
            floor.wall,
            f"parallel hashlib over the same {repo.audio_bytes / 1e6:.0f} MB",
            None,
            note="also parses every declaration file and plans and prints N creates; "
            "the hashing target is judged on the 'hashing only' figure below",
        )
    )
    warm_empty = best([b.voicectl(root, "plan", codes=(0,)) for _ in range(b.args.repeat)])
    hashing = subject.wall - warm_empty.wall
    b.extra["cold_plan_hashing_phase_s"] = hashing
    b.difference(
        report.Figure(
            "cold plan minus the same plan warm (hashing and parsing)",
            hashing,
            floor.wall,
            "parallel hashlib",
            None,
        )
    )
    b.extra["rss_cold_plan_mb"] = max(p.rss_mb for p in runs)

    # The hashing alone: the takes' cache gone, the declarations' kept (as after a
    # checkout that touched every take but no YAML), against the same plan warm.
    def takes_cold() -> Proc:
        (root / ".voicectl" / "cache" / "takes.json").unlink(missing_ok=True)
        return b.voicectl(root, "plan", codes=(0,))

    b.voicectl(root, "plan", codes=(0,))
    floor_t, takes, _ = interleaved(
        b.args.repeat_cold, lambda: b.floor("hash", str(root)), takes_cold
    )
    hashing_only = takes.wall - warm_empty.wall
    b.extra["cold_takes_hashing_phase_s"] = hashing_only
    b.difference(
        report.Figure(
            "takes' cache removed minus the same plan warm (hashing only)",
            hashing_only,
            floor_t.wall,
            "parallel hashlib (a process of its own)",
            1.25,
            note="the issue's 'cold hashing >= 80% of the floor', as time",
        )
    )


def bench_applies(b: Bench, repo: synth.Repo) -> None:
    sizes = apply_sizes(repo.voices, b.args.per_file)
    p = b.args.parallelism
    floor_size = next((s for s in sizes if s >= 1000), sizes[-1])
    print(f"apply into an empty state at no latency, N = {sizes}, P = {p}", flush=True)
    b.note(f"python -m voicectl apply --auto-approve --parallelism {p}   (against bench/stub.py)")
    b.note(f"python bench/floors.py clones REPO STUB {p}   (the same {floor_size} requests, bare)")
    walls: dict[int, float] = {}
    floor_per_action = 0.0
    for size in sizes:
        if size == repo.voices:
            root = repo.root
        else:
            root = synth.subset(repo, size, b.work / f"apply-{size}").root
            b.voicectl(root, "plan")  # hash the takes now: the apply measures applying
        if size == floor_size:
            with running_stub() as (floor_base, floor_ledger):
                floor = b.floor("clones", str(root), floor_base, str(p))
            b.check(f"bare clone floor sent {size} clones", len(floor_ledger.names) == size)
            floor_per_action = floor.wall / size
        with running_stub() as (base, ledger):
            before = os.times()
            proc = b.apply(root, base, "--parallelism", str(p))
            after = os.times()
        names = ledger.names
        b.check(
            f"apply of {size}: each voice cloned once",
            len(names) == size and len(set(names)) == size,
            f"{len(names)} clones, {len(set(names))} distinct",
        )
        b.check(f"apply of {size}: the state holds every voice", state_voices(root) == size)
        journal = root / (STATE + ".journal")
        b.check(f"apply of {size}: no journal left", not journal.exists())
        previous = max((s for s in walls if s < size), default=0)
        walls[size] = proc.wall
        b.extra[f"apply_{size}"] = {
            "wall_s": proc.wall,
            "cpu_s": proc.cpu,
            "rss_mb": proc.rss_mb,
            "server_cpu_s": (after.user - before.user) + (after.system - before.system),
            "per_action_ms": 1000 * proc.wall / size,
            "marginal_ms": 1000 * (proc.wall - walls.get(previous, 0.0)) / (size - previous),
            "cpu_per_action_ms": 1000 * proc.cpu / size,
        }
    for size in sizes:
        b.figure(
            report.Figure(
                f"apply {size} at no latency: time per voice",
                walls[size] / size,
                floor_per_action,
                f"bare client, the same stub, {floor_size} clones",
                None,
                unit="ms",
                scale=1000,
            )
        )
    smallest = sizes[0]
    for size in sizes[1:]:
        b.figure(
            report.Figure(
                f"apply per-voice cost at {size} vs at {smallest} (flat?)",
                walls[size] / size,
                walls[smallest] / smallest,
                f"per-voice cost at {smallest}",
                1.2,
                unit="ms",
                scale=1000,
            )
        )
    b.extra["rss_apply_mb"] = b.extra[f"apply_{repo.voices}"]["rss_mb"]


def bench_warm(b: Bench, repo: synth.Repo) -> None:
    print(f"warm plan of {repo.voices} voices, nothing changed", flush=True)
    b.note(f"python bench/floors.py parse REPO   vs   {_plan_cmd()}   (state of N voices)")
    root = repo.root
    b.voicectl(root, "plan")  # the cache is current after the apply; make sure
    floor, subject, runs = interleaved(
        b.args.repeat,
        lambda: b.floor("parse", str(root)),
        lambda: b.voicectl(root, "plan", "--detailed-exitcode", codes=(0,)),
    )
    b.check("warm plan: no changes", "No changes" in subject.out)
    b.check("parse floor saw every voice", floor.out.strip() == str(repo.voices))
    b.figure(
        report.Figure(
            "warm plan, nothing changed",
            subject.wall,
            floor.wall,
            "stat + parse of the same files (libyaml), state parsed",
            2.0,
            limit=1.0,
        )
    )
    b.extra["rss_warm_plan_mb"] = max(p.rss_mb for p in runs)
    b.extra["rss_parse_floor_mb"] = floor.rss_mb


def bench_fresh_clone(b: Bench, repo: synth.Repo) -> None:
    if shutil.which("git") is None:
        b.check("git is available for the fresh-clone figure", False, "git not found")
        return
    print(f"plan on a fresh git clone of {repo.voices} voices", flush=True)
    b.note(f"git clone REPO CLONE; {_plan_cmd('CLONE')}   vs   python bench/floors.py clone CLONE")
    floors, subjects = [], []
    for attempt in range(b.args.repeat_cold):
        clone = b.work / f"clone-{attempt}"
        subprocess.run(["git", "clone", "-q", str(repo.root), str(clone)], check=True)
        subjects.append(b.voicectl(clone, "plan", "--detailed-exitcode", codes=(0,)))
        floors.append(b.floor("clone", str(clone)))
        shutil.rmtree(clone)
    floor, subject = best(floors), best(subjects)
    b.check("fresh-clone plan: no changes (the state is committed)", subject.code == 0)
    b.figure(
        report.Figure(
            "plan on a fresh git clone",
            subject.wall,
            floor.wall,
            "stat + parse + git ls-files --stage + git diff-files",
            None,
            limit=2.0,
        )
    )
    b.extra["rss_fresh_clone_plan_mb"] = max(p.rss_mb for p in subjects)


def bench_latency(b: Bench, repo: synth.Repo) -> None:
    n = min(b.args.latency_voices, repo.voices // b.args.per_file * b.args.per_file)
    n = max(n, b.args.per_file)
    latency, p = b.args.latency_ms, b.args.parallelism
    print(f"apply {n} voices at {latency} ms latency, P = {p}, against the emulator", flush=True)
    b.note(
        f"python -m voicectl apply --auto-approve --parallelism {p}   (emulator, latency_ms "
        f"{latency}; then bench/stub.py at the same latency)   vs   ceil(N/P)*L"
    )
    root = b.work / f"latency-{n}"
    synth.subset(repo, n, root)
    b.voicectl(root, "plan")  # hash now: the figure is about the clones
    floor = math.ceil(n / p) * latency / 1000
    with running_emulator(b.work / f"emulator-{n}") as base:
        admin = Admin(base, TOKEN)
        admin.faults(latency_ms=latency)
        before = os.times()
        proc = b.apply(root, base, "--parallelism", str(p))
        after = os.times()
        clones = len(admin.ledger())
        fixed = b.apply(root, base)
        admin.close()
    b.check(f"latency apply: the emulator cloned {n} voices", clones == n, f"{clones} clones")
    b.check("latency apply: the state holds every voice", state_voices(root) == n)
    (root / STATE).unlink()  # empty again, for the same apply against the stub
    with running_stub(latency / 1000) as (base, ledger):
        quiet = b.apply(root, base, "--parallelism", str(p))
    b.check(f"latency apply to the stub: {n} clones", len(ledger.names) == n)
    with running_emulator(b.work / f"emulator-floor-{n}") as base:
        Admin(base, TOKEN).faults(latency_ms=latency)
        bare = b.floor("clones", str(root), base, str(p))
    b.check("bare clone floor against the emulator", bare.out.strip() == str(n))
    emulator_cpu = (after.user - before.user) + (after.system - before.system)
    b.extra["latency_apply"] = {
        "voices": n,
        "wall_s": proc.wall,
        "cpu_s": proc.cpu,
        "noop_apply_s": fixed.wall,
        "emulator_cpu_s": emulator_cpu,
        "bare_client_s": bare.wall,
        "stub_s": quiet.wall,
    }
    b.figure(
        report.Figure(
            f"apply {n} voices at {latency} ms, P={p}",
            proc.wall,
            floor,
            "ceil(N/P)*L",
            1.15,
            note=f"no-op apply {fixed.wall:.2f} s; emulator CPU {emulator_cpu:.1f} s",
        )
    )
    b.figure(
        report.Figure(
            "  the same requests from a bare client (the emulator's share)",
            bare.wall,
            floor,
            "ceil(N/P)*L",
            None,
        )
    )
    b.figure(
        report.Figure(
            f"  the same apply against bench/stub.py at {latency} ms (voicectl's share)",
            quiet.wall,
            floor,
            "ceil(N/P)*L",
            1.15,
        )
    )


def bench_rss(b: Bench) -> None:
    floor = b.extra.get("rss_parse_floor_mb", 0.0)
    for key, name, target in (
        ("rss_warm_plan_mb", "peak RSS, warm plan", 200.0),
        ("rss_cold_plan_mb", "peak RSS, cold plan", 200.0),
        ("rss_fresh_clone_plan_mb", "peak RSS, fresh-clone plan", 200.0),
        ("rss_apply_mb", "peak RSS, apply of all N", None),
    ):
        if key in b.extra:
            b.figure(
                report.Figure(
                    name,
                    b.extra[key],
                    floor,
                    "peak RSS of the parse floor",
                    None,
                    unit="MB",
                    scale=1,
                    limit=target,
                )
            )


def _plan_cmd(root: str = "REPO") -> str:
    return f"python -m voicectl -C {root} plan --detailed-exitcode"


# -- running it ------------------------------------------------------------------------------


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
                from bench import profiles

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
