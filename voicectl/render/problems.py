"""What validate (and every command that reads the repository) says of its problems:
as lines, warnings of one kind consolidated, or as JSON."""

from __future__ import annotations

import re
from collections.abc import Sequence

from voicectl.declare.formats import PCM_RULE
from voicectl.errors import Problem
from voicectl.render.asjson import json_text

WARNINGS_SHOWN = 3  # of one kind, unless --verbose
# What differs between two warnings of one kind: names, paths and numbers.
_WORDS = re.compile(r"'[^']*'|\S*/\S*|\d+(?:\.\d+)?")


def render_problems(problems: Sequence[Problem], every: bool = False) -> str:
    """Each problem on its line; of warnings of one kind (the same message but for its
    names and numbers, on the same field), the first few and how many more, as
    Terraform consolidates its warnings, unless ``every``."""
    lines: list[str] = []
    seen: dict[tuple[str, str], int] = {}
    for problem in problems:
        if problem.severity != "warning" or every:
            lines.append(problem.render())
            continue
        kind = (problem.field.rpartition(".")[2], _WORDS.sub("…", problem.message))
        seen[kind] = seen.get(kind, 0) + 1
        if seen[kind] <= WARNINGS_SHOWN:
            lines.append(problem.render())
    for (field, _), count in seen.items():
        if count > WARNINGS_SHOWN:
            lines.append(
                f"warning: and {count - WARNINGS_SHOWN:,} more {field} warning(s) like these; "
                "`voicectl --verbose` lists them all"
            )
    return "".join(line + "\n" for line in lines)


def take_notes(pcm: Sequence[str]) -> list[str]:
    """What validate says of takes that are right but easy to get wrong: raw .pcm has no
    header, so its bytes are heard by Coze's rule whatever they were recorded as."""
    if not pcm:
        return []
    named = ", ".join(pcm[:WARNINGS_SHOWN])
    more = f" and {len(pcm) - WARNINGS_SHOWN:,} more" if len(pcm) > WARNINGS_SHOWN else ""
    return [
        f"{len(pcm):,} take(s) are raw .pcm ({named}{more}): Coze hears raw samples as "
        f"{PCM_RULE}; a .pcm recorded otherwise is cloned from noise"
    ]


def problems_json(
    problems: Sequence[Problem], files: int, voices: int, notes: Sequence[str] = ()
) -> str:
    errors = sum(1 for p in problems if p.severity == "error")
    body = {
        "valid": errors == 0,
        "files": files,
        "voices": voices,
        "errors": errors,
        "warnings": len(problems) - errors,
        "problems": [p.to_json() for p in problems],
        "notes": list(notes),
    }
    return json_text(body)
