"""Renderers: functions from a Plan (or problems) to a string, chosen by format name.

One module a kind of output: :mod:`.textplan` (the terminal), :mod:`.markdown` (the
pull-request comment, made safe by :mod:`.mdtext`), :mod:`.asjson`, :mod:`.problems`
(validate's), :mod:`.applysummary` (the end of an apply); :mod:`.columns` holds what the
plan formats share. Callers use the names below, from ``voicectl.render``.
"""

from __future__ import annotations

from collections.abc import Callable

from voicectl.model import Plan
from voicectl.render.applysummary import apply_summary
from voicectl.render.asjson import json_text, render_json
from voicectl.render.columns import SYMBOLS, VERBS, summary_line
from voicectl.render.markdown import (
    MARKDOWN_LIMIT,
    MARKDOWN_MARKER,
    TAKE_FIELDS,
    WARNINGS_IN_COMMENT,
    render_markdown,
)
from voicectl.render.problems import WARNINGS_SHOWN, problems_json, render_problems, take_notes
from voicectl.render.textplan import FIELD_DIFFS_SHOWN, WORD_DIFF_SECONDS, render_text

PLAN_RENDERERS: dict[str, Callable[[Plan], str]] = {
    "text": render_text,
    "json": render_json,
    "markdown": render_markdown,
}

__all__ = [
    "FIELD_DIFFS_SHOWN",
    "MARKDOWN_LIMIT",
    "MARKDOWN_MARKER",
    "PLAN_RENDERERS",
    "SYMBOLS",
    "TAKE_FIELDS",
    "VERBS",
    "WARNINGS_IN_COMMENT",
    "WARNINGS_SHOWN",
    "WORD_DIFF_SECONDS",
    "apply_summary",
    "json_text",
    "problems_json",
    "render_json",
    "render_markdown",
    "render_problems",
    "render_text",
    "summary_line",
    "take_notes",
]
