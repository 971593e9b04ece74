"""The scale benchmark's figures of what voicectl costs beyond its work: the start-up
of ``voicectl --version``, and the peak memory of the commands the other figures ran."""

from __future__ import annotations

import sys

from bench import report
from bench.harness import Bench, interleaved
from bench.procs import run


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


def bench_rss(b: Bench) -> None:
    """Peak RSS of the plans and the apply, as recorded in ``b.extra`` by their figures."""
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
