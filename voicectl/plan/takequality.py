"""Take quality for a repository's declarations: measured (or read from the cache), held
to ``policy.takes``, and said as problems at each declaration's ``audio`` field (errors
under ``policy.strict_takes``)."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import replace
from pathlib import Path

from voicectl.declare import config
from voicectl.errors import Problem
from voicectl.model import Declaration, DesiredVoice, TakeVerdict
from voicectl.sound import checks
from voicectl.sound.quality import Quality

QUALITY_CACHE = Path(".voicectl") / "cache" / "quality.json"


def judged(
    cfg: config.Config,
    desired: Iterable[DesiredVoice],
    addresses: Collection[str] | None = None,
    known: Sequence[Problem] = (),
) -> tuple[dict[str, TakeVerdict], list[Problem]]:
    """The verdict on each take of ``desired`` (those at ``addresses`` only, when given)
    by sha256, and the quality warnings as problems. A verdict also carries the take's
    ``known`` warnings (validate's: length, channels, rate, name), said already."""
    chosen = [d for d in desired if addresses is None or d.decl.address in addresses]
    if not chosen:
        return {}, []
    takes = [
        checks.TakeToMeasure(cfg.root / d.take.path, d.take.sha256, d.take.format) for d in chosen
    ]
    measured = checks.measure_all(takes, cfg.root / QUALITY_CACHE)
    verdicts: dict[str, TakeVerdict] = {}
    problems: list[Problem] = []
    for voice in chosen:
        decl, sha = voice.decl, voice.take.sha256
        warnings = _measured(cfg, measured[sha], voice.take.duration)
        problems += [_at(decl, warning) for warning in warnings]
        field = f"voices.{decl.address}.audio"
        said = [
            p.message.removeprefix(f"{decl.audio}: ")
            for p in known
            if p.field == field and not p.message.startswith(f"{decl.audio}: named like")
        ]  # a file name's warning is its voice's, not its bytes' (shared by sha256)
        before = verdicts.get(sha)
        found = measured[sha]
        figures = found.to_json() if isinstance(found, Quality) else {}
        merged = [*(before.warnings if before else ()), *said, *warnings]
        verdicts[sha] = TakeVerdict(figures, tuple(dict.fromkeys(merged)))
    if cfg.strict_takes:  # CI's choice: a questionable take stops the plan
        problems = [
            replace(p, severity="error", message=f"{p.message} (policy.strict_takes)")
            for p in problems
        ]
    return verdicts, problems


def _at(decl: Declaration, warning: str) -> Problem:
    return Problem(
        decl.file,
        decl.audio_line,
        decl.audio_column,
        f"voices.{decl.address}.audio",
        f"{decl.audio}: {warning}",
        "warning",
    )


def _measured(cfg: config.Config, measured: Quality | str, declared: float) -> list[str]:
    if isinstance(measured, str):
        return [f"its quality could not be measured: it {measured}"]
    return cfg.takes.warnings(measured, declared)
