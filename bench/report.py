"""Figures, checks and the Markdown report (bench/RESULTS.md) of the scale benchmark."""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import yaml


@dataclass(frozen=True)
class Figure:
    """A measured value against its floor; ``value`` and ``floor`` in seconds or MB.

    ``target`` is the most ``value / floor`` may be, ``limit`` the most ``value`` may be
    (either, both or none: a figure without a target is reported, not judged).
    """

    name: str
    value: float
    floor: float
    floor_name: str
    target: float | None
    unit: str = "s"
    scale: float = 1.0
    limit: float | None = None
    note: str = ""

    @property
    def ratio(self) -> float:
        return self.value / self.floor if self.floor > 0 else float("inf")

    @property
    def met(self) -> bool | None:
        if self.target is None and self.limit is None:
            return None
        ratio_ok = self.target is None or self.ratio <= self.target
        return ratio_ok and (self.limit is None or self.value <= self.limit)

    def show(self, value: float) -> str:
        shown = value * self.scale
        if self.unit == "MB":
            return f"{shown:.0f} MB"
        return f"{shown:.3f} {self.unit}" if shown < 10 else f"{shown:.2f} {self.unit}"

    @property
    def goal(self) -> str:
        parts = []
        if self.target is not None:
            parts.append(f"≤ {self.target:g}× floor")
        if self.limit is not None:
            parts.append(f"≤ {self.show(self.limit)}")
        return " and ".join(parts) or "—"


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str = ""


def verdict(met: bool | None) -> str:
    return {True: "met", False: "NOT met", None: "—"}[met]


def line(f: Figure) -> str:
    return (
        f"{f.name:<58} {f.show(f.value):>11}  floor {f.show(f.floor):>11}  "
        f"ratio {f.ratio:6.2f}  target {f.goal}: {verdict(f.met)}"
    )


def load() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as handle:
            for text in handle:
                if text.startswith("model name"):
                    return text.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def _memory_gb() -> str:
    try:
        pages, size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
        return f"{pages * size / 2**30:.0f} GB"
    except (ValueError, OSError):
        return "?"


def machine() -> dict[str, Any]:
    try:
        git = subprocess.run(["git", "--version"], capture_output=True, text=True).stdout.strip()
    except OSError:
        git = "absent"
    return {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": f"{_cpu_model()}, {os.cpu_count()} cores",
        "memory": _memory_gb(),
        "os": platform.platform(),
        "python": sys.version.split()[0],
        "libyaml": bool(getattr(yaml, "__with_libyaml__", False)),
        "git": git,
        "load_before": load(),
    }


def _apply_rows(extra: dict[str, Any]) -> list[str]:
    rows = []
    for key in sorted((k for k in extra if k.startswith("apply_")), key=lambda k: int(k[6:])):
        a = extra[key]
        rows.append(
            f"| {key[6:]} | {a['wall_s']:.2f} s | {a['per_action_ms']:.2f} ms | "
            f"{a['marginal_ms']:.2f} ms | {a['cpu_per_action_ms']:.2f} ms | "
            f"{a['server_cpu_s']:.1f} s | {a['rss_mb']:.0f} MB |"
        )
    return rows


def markdown(
    args: argparse.Namespace,
    machine: dict[str, Any],
    figures: Sequence[Figure],
    checks: Sequence[Check],
    commands: Sequence[str],
    extra: dict[str, Any],
    argv: Sequence[str] | None,
) -> str:
    out = [
        *_head(args, machine, extra, argv),
        *_figures(figures),
        *_applies(extra),
        *["", "## Commands", "", *[f"- `{c}`" for c in commands]],
        *["", "## Checks", ""],
        *[
            f"- {'ok' if c.ok else 'FAILED'}: {c.name}{': ' + c.detail if c.detail else ''}"
            for c in checks
        ],
        *_profiles(extra),
    ]
    return "\n".join(out).rstrip() + "\n"


def _head(
    args: argparse.Namespace,
    machine: dict[str, Any],
    extra: dict[str, Any],
    argv: Sequence[str] | None,
) -> list[str]:
    """How the report was written, on what machine, of what repository."""
    invoked = " ".join(["python -m bench.scale", *(sys.argv[1:] if argv is None else argv)])
    return [
        "# voicectl at scale: benchmark results",
        "",
        f"Written by `{invoked}` ({extra.get('bench_wall_s', 0):.0f} s in all). Every figure is",
        "the best of a few runs of a real `python -m voicectl` process, next to a floor measured",
        "in the same run (bench/floors.py); the machine is shared, so read the ratios.",
        "",
        "## Machine",
        "",
        *[f"- {key}: {value}" for key, value in machine.items()],
        "",
        "## Repository",
        "",
        f"- {args.voices} voices in {extra.get('declaration_files', '?')} declaration files "
        f"({args.per_file} a file), one take each: {extra.get('audio_mb', 0):.0f} MB of WAV "
        f"({args.audio_kb:g} KB a take, 10.5 s), distinct bytes per take",
        f"- generated and committed to git in {extra.get('generate_s', 0):.1f} s",
    ]


def _figures(figures: Sequence[Figure]) -> list[str]:
    """The table of figures, each against its floor and target, then their notes."""
    out = [
        "",
        "## Figures",
        "",
        "| figure | measured | floor | floor is | ratio | target | |",
        "|---|---|---|---|---|---|---|",
    ]
    for f in figures:
        out.append(
            f"| {f.name.strip()} | {f.show(f.value)} | {f.show(f.floor)} | {f.floor_name} | "
            f"{f.ratio:.2f} | {f.goal} | {verdict(f.met)} |"
        )
    notes = [f"- {f.name.strip()}: {f.note}" for f in figures if f.note]
    if notes:
        out += ["", *notes]
    return out


def _applies(extra: dict[str, Any]) -> list[str]:
    """The applies at no latency by N, and the parts of the apply at latency."""
    out = []
    rows = _apply_rows(extra)
    if rows:
        out += [
            "",
            "## Apply at no latency, by N",
            "",
            "| N | wall | per voice | per voice since the previous N | voicectl CPU per voice "
            "| stub CPU | peak RSS |",
            "|---|---|---|---|---|---|---|",
            *rows,
        ]
    latency = extra.get("latency_apply")
    if latency:
        out += [
            "",
            f"Latency apply of {latency['voices']}: voicectl {latency['wall_s']:.2f} s "
            f"(CPU {latency['cpu_s']:.1f} s), a no-op apply {latency['noop_apply_s']:.2f} s, "
            f"the same requests from a bare client {latency['bare_client_s']:.2f} s, the "
            f"emulator's CPU during voicectl's run {latency['emulator_cpu_s']:.1f} s; the same "
            f"apply against bench/stub.py at the same latency {latency['stub_s']:.2f} s.",
        ]
    return out


def _profiles(extra: dict[str, Any]) -> list[str]:
    profiles = extra.get("profiles")
    if not profiles:
        return []
    out = ["", "## Profiles (cProfile, self time, the top functions)", ""]
    for name, text in profiles.items():
        out += [f"### {name}", "", "```", text.rstrip(), "```", ""]
    return out


def page(
    title: str,
    intro: str,
    machine: dict[str, object],
    figures: Sequence[Figure],
    checks: Sequence[Check],
    sections: Sequence[str] = (),
) -> str:
    """A benchmark's results as Markdown: its machine, its figures against their floors,
    any ``sections`` (lines), and its checks."""
    lines = [
        f"# {title}",
        "",
        intro,
        "",
        "## Machine",
        "",
        *[f"- {k}: {v}" for k, v in machine.items()],
        "",
        "## Figures",
        "",
        "| figure | measured | floor | floor is | ratio | target | |",
        "|---|---|---|---|---|---|---|",
        *[
            f"| {f.name} | {f.show(f.value)} | {f.show(f.floor)} | {f.floor_name} | "
            f"{f.ratio:.2f} | {f.goal} | {verdict(f.met)} |"
            for f in figures
        ],
        "",
        *sections,
        "## Checks",
        "",
        *[f"- {'ok' if c.ok else 'FAILED'}: {c.name}" for c in checks],
        "",
    ]
    return "\n".join(lines)
