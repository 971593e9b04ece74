"""The scale benchmark (``python -m bench.scale``) runs end to end at a small N, answering right.

Only correctness is asserted: timings belong to the benchmark's report, never to a test.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="the bench commits to git")


@pytest.fixture(scope="module")
def quick(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[subprocess.CompletedProcess[str], Path]:
    out = tmp_path_factory.mktemp("bench")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.scale",
            "--quick",
            "--voices",
            "40",
            "--out",
            str(out / "RESULTS.md"),
            "--json",
            str(out / "results.json"),
            "--workdir",
            str(out / "work"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=BENCH.parent,
    )
    return done, out


def test_quick_bench_passes_every_correctness_check(
    quick: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    """Every command exits as expected, each voice is cloned once, states hold every voice."""
    done, out = quick
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    failed = [c for c in results["checks"] if not c["ok"]]
    assert failed == []
    names = {c["name"] for c in results["checks"]}
    assert "apply of 40: each voice cloned once" in names
    assert "warm plan: no changes" in names
    assert "latency apply: the emulator cloned 20 voices" in names


def test_quick_bench_reports_every_figure_with_a_floor(
    quick: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    """Each figure docs/performance.md promises is in the report, each with a positive
    floor to divide by."""
    _, out = quick
    results = json.loads((out / "results.json").read_text())
    figures = {f["name"].strip(): f for f in results["figures"]}
    for prefix in (
        "voicectl --version",
        "cold plan (no cache)",
        "warm plan, nothing changed",
        "plan on a fresh git clone",
        "apply 20 voices at 20 ms",
        "apply 40 at no latency",
        "peak RSS, warm plan",
        "peak RSS, apply of all N",
    ):
        assert any(name.startswith(prefix) for name in figures), prefix
    assert all(f["floor"] > 0 and f["value"] > 0 for f in figures.values())
    text = (out / "RESULTS.md").read_text()
    assert "## Machine" in text and "## Figures" in text and "## Checks" in text


def quick_results(tmp_path: Path, module: str, *args: str) -> str:
    """``python -m MODULE --quick``, which must pass; the results page it wrote."""
    out = tmp_path / "RESULTS.md"
    done = subprocess.run(
        [sys.executable, "-m", module, "--quick", *args, "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=BENCH.parent,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return out.read_text()


def floor_of(text: str, name: str) -> float:
    """The floor of the figure whose row starts with ``name`` in a results page."""
    row = next(line for line in text.splitlines() if line.startswith(f"| {name}"))
    return float(row.split("|")[3].strip().split()[0])


def test_the_postgresql_bench_runs_and_answers_right(tmp_path: Path) -> None:
    """``python -m bench.pgstore --quick``: both stores applied and planned, every check
    passed, each of its figures reported against a positive floor."""
    text = quick_results(tmp_path, "bench.pgstore", "--voices", "30")
    assert "FAILED" not in text and "- ok: each voice cloned once on each store" in text
    for name in ("apply 30 at no latency", "warm plan of 30 voices", "state write of 30"):
        assert floor_of(text, name) > 0


def test_the_review_bench_runs_and_answers_right(tmp_path: Path) -> None:
    """``python -m bench.review --quick``: every take on the page, a picture pair each,
    the review timed against decoding the same takes, and the page's size reported."""
    text = quick_results(tmp_path, "bench.review")
    assert "FAILED" not in text and "- ok: every take on the page" in text
    assert floor_of(text, "review of 8 new voices") > 0
    assert "- index.html: " in text
