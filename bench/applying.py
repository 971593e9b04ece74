"""The scale benchmark's figures of applying: into an empty state at no latency, at
about N/10, N/2 and N (is the cost per voice flat?), and at a latency like Coze's,
against the emulator, a bare client and bench/stub.py (whose share is the time?)."""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

from bench import report, synth
from bench.harness import Bench
from bench.procs import STATE, TOKEN, Proc
from bench.stub import running_stub
from voicectl.emulator.admin import Admin
from voicectl.emulator.server import running_emulator


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


def _cpu(before: os.times_result, after: os.times_result) -> float:
    return (after.user - before.user) + (after.system - before.system)


# -- at no latency, by N ---------------------------------------------------------------------


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
            floor_per_action = _clone_floor(b, root, size) / size
        _apply_into_empty(b, root, size, walls)
    _per_voice_figures(b, walls, floor_per_action, floor_size)
    b.extra["rss_apply_mb"] = b.extra[f"apply_{repo.voices}"]["rss_mb"]


def _clone_floor(b: Bench, root: Path, size: int) -> float:
    """The seconds a bare client takes to send the same clones to the same stub."""
    with running_stub() as (floor_base, floor_ledger):
        floor = b.floor("clones", str(root), floor_base, str(b.args.parallelism))
    b.check(f"bare clone floor sent {size} clones", len(floor_ledger.names) == size)
    return floor.wall


def _apply_into_empty(b: Bench, root: Path, size: int, walls: dict[int, float]) -> None:
    """Apply ``size`` voices to the stub, check it, and record its wall time in ``walls``."""
    with running_stub() as (base, ledger):
        before = os.times()
        proc = b.apply(root, base, "--parallelism", str(b.args.parallelism))
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
        "server_cpu_s": _cpu(before, after),
        "per_action_ms": 1000 * proc.wall / size,
        "marginal_ms": 1000 * (proc.wall - walls.get(previous, 0.0)) / (size - previous),
        "cpu_per_action_ms": 1000 * proc.cpu / size,
    }


def _per_voice_figures(
    b: Bench, walls: dict[int, float], floor_per_action: float, floor_size: int
) -> None:
    sizes = sorted(walls)
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


# -- at a latency like Coze's ----------------------------------------------------------------


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
    proc, fixed, emulator_cpu = _apply_to_emulator(b, root, n)
    (root / STATE).unlink()  # empty again, for the same apply against the stub
    with running_stub(latency / 1000) as (base, ledger):
        quiet = b.apply(root, base, "--parallelism", str(p))
    b.check(f"latency apply to the stub: {n} clones", len(ledger.names) == n)
    with running_emulator(b.work / f"emulator-floor-{n}") as base, Admin(base, TOKEN) as admin:
        admin.faults(latency_ms=latency)
        bare = b.floor("clones", str(root), base, str(p))
    b.check("bare clone floor against the emulator", bare.out.strip() == str(n))
    runs = _LatencyRuns(proc, fixed, bare, quiet, emulator_cpu)
    b.extra["latency_apply"] = {
        "voices": n,
        "wall_s": proc.wall,
        "cpu_s": proc.cpu,
        "noop_apply_s": fixed.wall,
        "emulator_cpu_s": emulator_cpu,
        "bare_client_s": bare.wall,
        "stub_s": quiet.wall,
    }
    _latency_figures(b, n, floor, runs)


@dataclass(frozen=True)
class _LatencyRuns:
    """The apply at latency, and what tells whose share its time is."""

    apply: Proc  # voicectl against the emulator
    noop: Proc  # the same apply again, nothing left to do
    bare: Proc  # the same requests from a bare client, to the emulator
    stub: Proc  # voicectl against bench/stub.py at the same latency
    emulator_cpu: float  # the emulator's CPU seconds during the apply


def _apply_to_emulator(b: Bench, root: Path, n: int) -> tuple[Proc, Proc, float]:
    """The apply of ``n`` voices to the emulator at the latency asked, then a no-op
    apply; and the emulator's CPU seconds during the first."""
    with running_emulator(b.work / f"emulator-{n}") as base, Admin(base, TOKEN) as admin:
        admin.faults(latency_ms=b.args.latency_ms)
        before = os.times()
        proc = b.apply(root, base, "--parallelism", str(b.args.parallelism))
        after = os.times()
        clones = len(admin.ledger())
        fixed = b.apply(root, base)
    b.check(f"latency apply: the emulator cloned {n} voices", clones == n, f"{clones} clones")
    b.check("latency apply: the state holds every voice", state_voices(root) == n)
    return proc, fixed, _cpu(before, after)


def _latency_figures(b: Bench, n: int, floor: float, runs: _LatencyRuns) -> None:
    latency, p = b.args.latency_ms, b.args.parallelism
    b.figure(
        report.Figure(
            f"apply {n} voices at {latency} ms, P={p}",
            runs.apply.wall,
            floor,
            "ceil(N/P)*L",
            1.15,
            note=f"no-op apply {runs.noop.wall:.2f} s; emulator CPU {runs.emulator_cpu:.1f} s",
        )
    )
    b.figure(
        report.Figure(
            "  the same requests from a bare client (the emulator's share)",
            runs.bare.wall,
            floor,
            "ceil(N/P)*L",
            None,
        )
    )
    b.figure(
        report.Figure(
            f"  the same apply against bench/stub.py at {latency} ms (voicectl's share)",
            runs.stub.wall,
            floor,
            "ceil(N/P)*L",
            1.15,
        )
    )
