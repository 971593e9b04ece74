"""A run of the scale benchmark: how it runs voicectl and its floors, and how it keeps
the figures, checks and commands the report is written from (``bench.scale``)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import report
from bench.procs import TOKEN, Proc, run

BENCH = Path(__file__).resolve().parent


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
