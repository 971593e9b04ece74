"""What changed in a voice, field by field, for a person reading a plan.

deepdiff finds the fields that differ between what the state records and what the
repository declares; this module says each in a line a reviewer can read: a word diff
of a transcript (git's ``--word-diff`` marks), a take by its sha256 prefix, duration and
size. It is for people, never for deciding anything: the planner decides on its own.
"""

from __future__ import annotations

import difflib
import re
import time
import unicodedata
from collections.abc import Mapping, Sequence
from typing import Any

from voicectl.model import VoiceSpec
from voicectl.planfile import spec_to_json

# Fields in the order a reviewer reads them; anything else after, by name.
_ORDER = (
    "text",
    "audio",
    "audio.sha256",
    "audio.duration",
    "audio.size",
    "audio.format",
    "audio.path",
    "name",
    "preview_text",
    "language",
    "space",
    "protect",
)
_IGNORED = ("root['audio']['verified']",)
CONTEXT = 4  # words kept on each side of a change in a long transcript


def changed_fields(
    recorded: VoiceSpec | None, declared: VoiceSpec | None
) -> dict[str, tuple[Any, Any]]:
    """field -> (recorded, declared) for every field that differs, in reading order
    (dotted names: ``audio.sha256``, as the plan file spells them). With nothing recorded
    (a new voice), every field declared is new, the take as the one field ``audio``, and
    ``protect`` only when set."""
    before, after = spec_to_json(recorded), spec_to_json(declared)
    if after is None:
        return {}
    if not before:
        return {
            k: (None, v)
            for k, v in sorted(after.items(), key=lambda kv: _rank(kv[0]))
            if v is not None and not (k == "protect" and v is False)
        }
    from deepdiff import DeepDiff
    from deepdiff.helper import NotPresent

    wanted = dict(after)
    if wanted.get("protect") is None:  # protect left out keeps the recorded value
        wanted["protect"] = before.get("protect")
    diff = DeepDiff(dict(before), wanted, view="tree", exclude_paths=list(_IGNORED))
    found: dict[str, tuple[Any, Any]] = {}
    for levels in diff.values():
        for level in levels:
            field = ".".join(str(part) for part in level.path(output_format="list"))
            # deepdiff marks the side a field is absent from with NotPresent.
            old, new = (None if isinstance(v, NotPresent) else v for v in (level.t1, level.t2))
            if old is not None or new is not None:
                found[field] = (old, new)
    return {field: found[field] for field in sorted(found, key=_rank)}


def _rank(field: str) -> tuple[int, str]:
    ordered = _ORDER.index(field) if field in _ORDER else len(_ORDER)
    return ordered, field


class Budget:
    """Time for word diffs, shared by every change of one rendering: a word diff is
    quadratic in the words of the two texts, so past the budget (or for two long texts)
    a transcript shows as the old text and the new one, each shortened."""

    def __init__(self, seconds: float) -> None:
        self.until = time.monotonic() + seconds

    def left(self) -> bool:
        return time.monotonic() < self.until


def field_changes(
    before: VoiceSpec | None,
    after: VoiceSpec | None,
    budget: Budget | None = None,
) -> list[tuple[str, str]]:
    """(field, what became of it, in words) for every field that differs."""
    exact = budget is None or budget.left()
    return [
        (field, _say(field, *pair, exact=exact))
        for field, pair in changed_fields(before, after).items()
    ]


def describe_take(audio: Mapping[str, Any]) -> str:
    """A take as people compare two: where it is, its format, length, size, sha256."""
    return (
        f"{audio.get('path')} ({audio.get('format')}, {float(audio.get('duration') or 0):.1f} s, "
        f"{int(audio.get('size') or 0):,} bytes, sha256 {str(audio.get('sha256') or '')[:12]})"
    )


def _say(field: str, old: Any, new: Any, exact: bool = True) -> str:
    if field == "text" and isinstance(old, str) and isinstance(new, str):
        said = word_diff(old, new, exact)
        if unicodedata.normalize("NFKC", old) == unicodedata.normalize("NFKC", new):
            # Looks the same, is not: a retrain all the same, so say why.
            said += " (the same letters in another Unicode form)"
        return said
    return f"{_value(field, old)} -> {_value(field, new)}"


def _value(field: str, value: Any) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, Mapping):  # a whole take, new or gone
        return describe_take(value)
    if field == "audio.sha256" and isinstance(value, str):
        return value[:12]
    if field == "audio.duration" and isinstance(value, int | float):
        return f"{value:.1f} s"
    if field == "audio.size" and isinstance(value, int):
        return f"{value:,} bytes"
    if isinstance(value, str):
        return _quoted(value)
    return str(value).lower() if isinstance(value, bool) else str(value)


def _quoted(text: str) -> str:
    return '"' + _escaped(text) + '"'


def _escaped(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


# A word, one CJK character (Chinese and Japanese have no spaces between words), a run of
# spaces, or one mark of punctuation.
_TOKENS = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]|\w+|\s+|[^\w\s]")


WORD_DIFF_CELLS = 40_000
"""The most (words of the old text) x (words of the new) a word diff compares: about two
transcripts of 200 words; past it, the two texts are shown whole (shortened)."""
SHOWN_WHOLE = 120  # characters of each text shown when they are not word-diffed


def word_diff(old: str, new: str, exact: bool = True) -> str:
    """``new`` with what was removed as ``[-…-]`` and what was added as ``{+…+}``, as
    ``git diff --word-diff`` marks them; long unchanged stretches are cut to a few
    words either side of a change. Not ``exact`` (out of time), or for two texts too
    long to compare word by word, the old text and the new one, each shortened."""
    a, b = _TOKENS.findall(old), _TOKENS.findall(new)
    if old != new and (not exact or len(a) * len(b) > WORD_DIFF_CELLS):
        whole = f"[-{_escaped(_cut(old))}-]{{+{_escaped(_cut(new))}+}}"
        return f'"{whole}" ({len(old):,} -> {len(new):,} characters)'
    opcodes = difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes()
    if all(tag == "equal" for tag, *_ in opcodes):
        return _quoted(new)
    out: list[str] = []
    for index, (tag, i1, i2, j1, j2) in enumerate(opcodes):
        if tag == "equal":
            out.append(_trim(a[i1:i2], first=index == 0, last=index == len(opcodes) - 1))
            continue
        if i2 > i1:
            out.append("[-" + _escaped("".join(a[i1:i2])) + "-]")
        if j2 > j1:
            out.append("{+" + _escaped("".join(b[j1:j2])) + "+}")
    return '"' + "".join(out) + '"'


def _cut(text: str) -> str:
    return text if len(text) <= SHOWN_WHOLE else text[: SHOWN_WHOLE - 1] + "…"


def _trim(tokens: Sequence[str], first: bool, last: bool) -> str:
    """An unchanged stretch, cut to CONTEXT words next to each change it touches; the
    cut is marked with an ellipsis, spaced only where the text had a space."""
    words = [i for i, t in enumerate(tokens) if not t.isspace()]
    keep_head = 0 if first else CONTEXT
    keep_tail = 0 if last else CONTEXT
    if len(words) <= keep_head + keep_tail + 1:
        return _escaped("".join(tokens))
    cut_from = words[keep_head - 1] + 1 if keep_head else 0
    cut_to = words[-keep_tail] if keep_tail else len(tokens)
    gap = tokens[cut_from:cut_to]
    before = " " if gap and gap[0].isspace() else ""
    after = " " if gap and gap[-1].isspace() else ""
    head, tail = _escaped("".join(tokens[:cut_from])), _escaped("".join(tokens[cut_to:]))
    return head + (before if head else "") + "…" + (after if tail else "") + tail
