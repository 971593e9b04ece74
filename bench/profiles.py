"""Profiles of the benchmarked commands (``python -m bench.scale --profile DIR``).

Each command runs once more under bench/profile_child.py (cProfile on every thread);
the ``.prof`` files stay in DIR for ``python -m pstats`` or snakeviz, and a short text of
the top functions by cumulative and by self time goes into the report.
"""

from __future__ import annotations

import io
import pstats
import shutil
import sys
from pathlib import Path
from typing import Any, Protocol

from bench import synth
from bench.procs import TOKEN, clear_cache, run
from bench.stub import running_stub


class Bench(Protocol):
    """What profiling needs of a benchmark run (``bench.harness.Bench`` has it)."""

    args: Any
    env: dict[str, str]
    work: Path


BENCH = Path(__file__).resolve().parent
TOP = 25
SHORT = 10


def summary(path: Path, sort: str, top: int = TOP) -> str:
    stream = io.StringIO()
    stats = pstats.Stats(str(path), stream=stream)
    stats.strip_dirs().sort_stats(sort).print_stats(top)
    text = stream.getvalue()
    start = text.find("   ncalls")
    return text[start:] if start >= 0 else text


def profile_all(b: Bench, repo: synth.Repo, out: Path) -> dict[str, str]:
    out.mkdir(parents=True, exist_ok=True)
    child = [sys.executable, str(BENCH / "profile_child.py")]

    def profiled(name: str, *args: str, codes: tuple[int, ...] = (0,), **env: str) -> None:
        print(f"profiling {name}", flush=True)
        run([*child, str(out / name), "--", *args], {**b.env, **env}, codes)

    root = str(repo.root)
    profiled("warm-plan", "-C", root, "plan")
    clear_cache(repo.root)
    profiled("cold-plan", "-C", root, "plan")
    clone = b.work / "profile-clone"
    synth.git(repo.root, "clone", "-q", root, str(clone))
    profiled("fresh-clone-plan", "-C", str(clone), "plan")
    shutil.rmtree(clone)
    profiled("version", "--version")
    target = synth.subset(repo, repo.voices, b.work / "profile-apply").root
    run([sys.executable, "-m", "voicectl", "-C", str(target), "plan"], b.env)
    with running_stub() as (base, _):
        profiled(
            "apply",
            "-C",
            str(target),
            "apply",
            "--auto-approve",
            "--parallelism",
            str(b.args.parallelism),
            COZE_API_BASE=base,
            COZE_API_TOKEN=TOKEN,
        )
    texts = {}
    for name in ("warm-plan", "cold-plan", "fresh-clone-plan", "version", "apply"):
        main = out / f"{name}.main.prof"
        full = f"{name}, main thread, by cumulative time\n" + summary(main, "cumulative")
        full += f"\n{name}, main thread, by self time\n" + summary(main, "tottime")
        short = "main thread, by self time\n" + summary(main, "tottime", SHORT)
        threads = out / f"{name}.threads.prof"
        if threads.exists():
            full += f"\n{name}, worker threads merged, by self time\n" + summary(threads, "tottime")
            short += "\nworker threads merged, by self time\n" + summary(threads, "tottime", SHORT)
        (out / f"{name}.txt").write_text(full)
        texts[name] = short
    return texts
