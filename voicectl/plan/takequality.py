"""Take quality for a repository's declarations: measured (or read from the cache), held
to ``policy.takes``, and said as problems at each declaration's ``audio`` field (errors
under ``policy.strict_takes``)."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import replace
from pathlib import Path

from voicectl.declare import config
from voicectl.errors import Problem
from voicectl.model import DesiredVoice, TakeVerdict
from voicectl.sound import checks
from voicectl.sound.quality import Quality

QUALITY_CACHE = Path(".voicectl") / "cache" / "quality.json"


def judged(
    cfg: config.Config, desired: Iterable[DesiredVoice], addresses: Collection[str] | None = None
) -> tuple[dict[str, TakeVerdict], list[Problem]]:
    """The verdict on each take of ``desired`` (those at ``addresses`` only, when given)
    by sha256, and its warnings as problems."""
    chosen = [d for d in desired if addresses is None or d.decl.address in addresses]
    if not chosen:
        return {}, []
    measured = checks.measure_all(
        (
            checks.TakeToMeasure(cfg.root / d.take.path, d.take.sha256, d.take.format)
            for d in chosen
        ),
        cfg.root / QUALITY_CACHE,
    )
    verdicts: dict[str, TakeVerdict] = {}
    problems: list[Problem] = []
    for voice in chosen:
        verdict = verdicts.get(voice.take.sha256)
        if verdict is None:
            verdict = verdicts[voice.take.sha256] = _verdict(cfg, measured[voice.take.sha256])
        decl = voice.decl
        for warning in verdict.warnings:
            problems.append(
                Problem(
                    decl.file,
                    decl.audio_line,
                    decl.audio_column,
                    f"voices.{decl.address}.audio",
                    f"{decl.audio}: {warning}",
                    "warning",
                )
            )
    if cfg.strict_takes:  # CI's choice: a questionable take stops the plan
        problems = [
            replace(p, severity="error", message=f"{p.message} (policy.strict_takes)")
            for p in problems
        ]
    return verdicts, problems


def _verdict(cfg: config.Config, measured: Quality | str) -> TakeVerdict:
    if isinstance(measured, str):
        return TakeVerdict({}, (f"its quality could not be measured: it {measured}",))
    return TakeVerdict(measured.to_json(), tuple(cfg.takes.warnings(measured)))
