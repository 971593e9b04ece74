"""Renderers: functions from a Plan (or problems) to a string, chosen by format name."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence

from voicectl.declare.formats import PCM_RULE
from voicectl.errors import Problem, visible
from voicectl.model import ACTIONS, Change, Plan, State
from voicectl.plan.fielddiff import Budget, changed_fields, describe_take, field_changes
from voicectl.planfile import plan_to_json

SYMBOLS = {
    "create": "+",
    "retrain": "~",
    "replace": "-/+",
    "move": ">",
    "update": "*",
    "orphan": "-",
    "blocked": "!",
    "noop": " ",
}
VERBS = {
    "create": "to create",
    "retrain": "to retrain",
    "replace": "to replace",
    "move": "to move",
    "update": "to update",
    "orphan": "to orphan",
    "blocked": "blocked",
}


def json_text(body: object) -> str:
    """The one JSON style of voicectl's output: sorted keys, 2-space indent, UTF-8."""
    return json.dumps(body, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def render_json(plan: Plan) -> str:
    return json_text(plan_to_json(plan))


def _budget(change: Change) -> str:
    b = change.budget
    before = "new" if b.before is None else str(b.before)
    after = "none" if b.after is None else str(b.after)
    return f"{before} -> {after}"


def _cost(change: Change) -> str:
    c = change.cost
    if not c.one_time_cny and not c.monthly_cny_delta:
        return "0 CNY"
    return f"{c.one_time_cny} CNY + {c.monthly_cny_delta} CNY/month"


def summary_line(plan: Plan) -> str:
    counts = plan.summary
    parts = [f"{counts[a]} {VERBS[a]}" for a in ACTIONS if a != "noop" and counts[a]]
    cost = plan.cost
    return (
        f"Plan: {', '.join(parts)}. Clones spent: {plan.clones_spent}. Cost: "
        f"{cost.one_time_cny} CNY one-time, {cost.monthly_cny_delta:+d} CNY/month."
    )


WORD_DIFF_SECONDS = 2.0  # of word diffs in one text plan; the rest show texts whole
FIELD_DIFFS_SHOWN = 1_000
"""Changes whose fields the text plan spells out; past them (deepdiff costs about 0.25 ms
a change) the plan says how to see the rest."""


def render_text(plan: Plan) -> str:
    shown = [c for c in plan.changes if c.action != "noop"]
    notes = [(c.address, n) for c in plan.changes for n in c.notes]
    lines: list[str] = []
    budget = Budget(WORD_DIFF_SECONDS)
    if shown:
        used = [a for a in ACTIONS if any(c.action == a for c in shown)]
        lines.append("Symbols: " + ", ".join(f"{SYMBOLS[a]} {a}" for a in used))
        width = max(len(c.address) for c in shown)
        for n, c in enumerate(shown):
            reasons = _reasons(c)
            lines.append(
                f"{SYMBOLS[c.action]:>3} {c.address:<{width}}  {c.action:<7}  "
                f"{reasons}  [clones left {_budget(c)}]  {_cost(c)}"
            )
            indent = f"{'':>3} {'':<{width}}  "
            if c.message:
                lines.append(indent + c.message)
            if n < FIELD_DIFFS_SHOWN:
                lines.extend(indent + line for line in _what_changed(c, budget))
        if len(shown) > FIELD_DIFFS_SHOWN:
            lines.append(
                f"(what changed is spelled out for the first {FIELD_DIFFS_SHOWN:,} changes; "
                "`voicectl plan --json` holds every one's before and after)"
            )
    for address, note in notes:
        lines.append(f"note: {address}: {note}")
    if not plan.has_changes:
        lines.append("No changes to Coze; read the notes above." if notes else "No changes.")
    else:
        if lines:
            lines.append("")
        lines.append(summary_line(plan))
    # A saved plan is a file anyone could have edited: its text reaches a terminal escaped.
    return "\n".join(visible(line) for line in lines) + "\n"


def _reasons(change: Change) -> str:
    """Why, in the plan's words; a move says where from (an orphan taken back at its own
    address is not a move from anywhere)."""
    said = ", ".join(change.reasons)
    if change.from_address and change.from_address != change.address:
        said += f" (from {change.from_address})"
    return said


def _what_changed(change: Change, budget: Budget | None = None) -> list[str]:
    """The fields that differ, or for a new voice (created or blocked) its take."""
    if not change.before:
        take = (change.after or {}).get("audio")
        return [f"audio: {describe_take(take)}"] if isinstance(take, dict) else []
    changed = field_changes(change.before, change.after, budget)
    width = max((len(field) for field, _ in changed), default=0)
    return [f"{field + ':':<{width + 1}} {said}" for field, said in changed]


MARKDOWN_LIMIT = 65_536
"""GitHub's limit on a pull-request comment, in characters."""
MARKDOWN_MARKER = "<!-- voicectl-plan -->"
"""Ends every markdown plan, so a CI job can find its comment and update it in place."""


def _md_cell(value: object) -> str:
    """``value`` as the text of a table cell for GitHub and GitLab: data, never markup
    (no HTML, link, emphasis or code span of its own; one line; no cell break)."""
    text = "" if value is None else str(value)
    text = "".join(" " if not c.isprintable() else c for c in text)
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = "".join("\\" + c if c in _MARKDOWN_SPECIALS else c for c in text)
    # GitHub would turn @org/team and @user into mentions (people paged by a voice name)
    # and bare addresses into links: a zero-width space keeps both plain text.
    for token, plain in _NOT_LINKED:
        text = text.replace(token, plain)
    return text


_NOT_LINKED = (("@", "@\u200b"), ("://", ":\u200b//"), ("www.", "www\u200b."))


_MARKDOWN_SPECIALS = frozenset("\\`*_[]()#+!|~")


def _md_code(value: object) -> str:
    """``value`` as a code span whatever backticks it holds (CommonMark: a fence longer
    than any run of backticks inside)."""
    text = "".join(" " if not c.isprintable() else c for c in str(value))
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _short(value: object, width: int = 60) -> str:
    text = "" if value is None else str(value)
    return text if len(text) <= width else text[: width - 1] + "…"


def _audio_facts(audio: dict[str, object] | None) -> str:
    """A take in a table cell: the words of :func:`describe_take`, path and sha256 in
    code spans no backtick can close."""
    if not audio:
        return ""
    size, duration = audio.get("size"), audio.get("duration")
    parts = [
        _md_code(audio.get("path")),
        _md_cell(audio.get("format") or ""),
        f"{duration:.1f} s" if isinstance(duration, (int, float)) else "",
        f"{size:,} bytes" if isinstance(size, int) else "",
        f"sha256 `{str(audio.get('sha256') or '')[:12]}`",
    ]
    return ", ".join(p for p in parts if p)


TAKE_FIELDS = ("text", "audio")  # shown as a diff and as the two takes, not as rows


def _md_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return _md_cell(_short(value, 200))


def _details(change: Change) -> list[str]:
    """The collapsed section of one change: message, field diffs, audio, text diff."""
    import difflib

    before, after = change.before or {}, change.after or {}
    title = f"<code>{change.address}</code>: {change.action}"
    if change.from_address and change.from_address != change.address:
        title += f" (from <code>{change.from_address}</code>)"
    out = ["<details>", f"<summary>{title}</summary>", ""]
    if change.message:
        out += [_md_cell(change.message), ""]
    changed = changed_fields(change.before, change.after)
    rows = [(k, *pair) for k, pair in changed.items() if k.partition(".")[0] not in TAKE_FIELDS]
    old_audio, new_audio = before.get("audio"), after.get("audio")
    cells = [(k, _md_value(b), _md_value(a)) for k, b, a in rows]
    if any(field.partition(".")[0] == "audio" for field in changed):  # safe: code spans
        cells.append(("audio", _audio_facts(old_audio), _audio_facts(new_audio)))
    if cells:
        out += ["| field | before | after |", "|---|---|---|"]
        out += [f"| {k} | {b} | {a} |" for k, b, a in cells]
        out.append("")
    old_text, new_text = before.get("text"), after.get("text")
    if "text" in changed:
        diff = difflib.unified_diff(
            str(old_text or "").splitlines(),
            str(new_text or "").splitlines(),
            "text (state)",
            "text (declared)",
            lineterm="",
        )
        # The recorded text comes from a state a pull request can edit: shown escaped.
        out += ["```diff", *(visible(line).replace("```", "ˋˋˋ") for line in diff), "```", ""]
    for note in change.notes:
        out += [f"> {_md_cell(note)}", ""]
    out += ["</details>", ""]
    return out


WARNINGS_IN_COMMENT = 20


def _md_warnings(plan: Plan) -> list[str]:
    """The repository's warnings (already grouped by kind), collapsed: a stereo or 8 kHz
    take is the reviewer's to see, not only the log's."""
    if not plan.warnings:
        return []
    shown = plan.warnings[:WARNINGS_IN_COMMENT]
    more = len(plan.warnings) - len(shown)
    out = ["<details>", f"<summary>{len(plan.warnings)} warning(s)</summary>", ""]
    out += [f"- {_md_cell(line)}" for line in shown]
    if more:
        out.append(f"- *…and {more} more; `voicectl validate` lists them.*")
    return [*out, "", "</details>", ""]


def _md_notes(plan: Plan, budget: int) -> list[str]:
    """The notes of voices the plan leaves unchanged (a changed voice's are in its
    details), as a quoted list within ``budget`` characters: what a reviewer must not miss
    even when nothing is to be cloned, such as a voice recorded as unproven."""
    notes = [(c.address, n) for c in plan.changes if c.action == "noop" for n in c.notes]
    if not notes:
        return []
    # A voice that may be someone else's comes first: it must not be in "…and N more".
    notes.sort(key=lambda note: " is unproven: " not in note[1])
    out, used = ["Notes:", ""], 10
    for n, (address, note) in enumerate(notes):
        line = f"> `{address}`: {_md_cell(note)}"
        if used + len(line) + 3 > budget - 200:
            out += [f"*…and {len(notes) - n} more note(s); `voicectl plan` shows them all.*", ""]
            break
        out += [line, ">"]
        used += len(line) + 3
    if out[-1] == ">":
        out[-1] = ""
    return out


def render_markdown(plan: Plan, limit: int = MARKDOWN_LIMIT) -> str:
    """A pull-request comment: the summary line first, a table of changes with budgets,
    then collapsed details per voice; at most ``limit`` characters, shortening the
    details (then the table) and never the summary; the same plan gives the same text."""
    if not plan.has_changes:
        count = sum(len(c.notes) for c in plan.changes)
        said = f" {count} note(s) to read." if count else ""
        head = [
            f"**voicectl plan: no changes to Coze.{said}**"
            if count
            else "**voicectl plan: no changes.**",
            "",
        ]
        notes = _md_notes(plan, limit - len(head[0]) - len(MARKDOWN_MARKER) - 10)
        warnings = _md_warnings(plan)
        return "\n".join([*head, *notes, *warnings, MARKDOWN_MARKER, ""])
    head = [f"**{summary_line(plan)}**", ""]
    head += _md_notes(plan, limit // 4)
    head += _md_warnings(plan)
    shown = [c for c in plan.changes if c.action != "noop"]
    rows = [
        "| | address | action | reasons | clones left | cost |",
        "|---|---|---|---|---|---|",
    ]
    rows += [
        f"| `{SYMBOLS[c.action]}` | `{c.address}` | {c.action} | "
        f"{_md_cell(_short(_reasons(c), 80))} | {_budget(c)} | {_cost(c)} |"
        for c in shown
    ]
    tail = ["", MARKDOWN_MARKER, ""]
    reserve = 200  # for the "omitted" lines

    def size(lines: list[str]) -> int:
        return sum(len(line) + 1 for line in lines)

    budget = limit - size(head) - size(tail) - reserve
    table: list[str] = []
    for n, row in enumerate(rows):
        if size(table) + len(row) + 1 > budget:
            table.append(
                f"\n*…and {len(rows) - n} more change(s), not shown: the comment limit is "
                f"{limit:,} characters; `voicectl show` on the saved plan lists them all.*"
            )
            break
        table.append(row)
    table.append("")
    budget -= size(table)
    details: list[str] = []
    for n, change in enumerate(shown):
        block = _details(change)
        if size(details) + size(block) > budget:
            details.append(
                f"*Details of {len(shown) - n} more change(s) left out to stay under "
                f"{limit:,} characters.*"
            )
            details.append("")
            break
        details += block
    return "\n".join([*head, *table, *details, *tail]).rstrip("\n") + "\n"


def apply_summary(
    done: Sequence[tuple[Change, str | None]],
    failed: Sequence[tuple[Change, str]],
    blocked: Sequence[Change],
    state: State,
) -> str:
    """The end of an apply: each voice's id and budget, what was spent, what failed."""
    lines = []
    if done:
        lines += ["", "Voices:"]
        width = max(len(c.address) for c, _ in done)
        for change, voice_id in sorted(done, key=lambda item: item[0].address):
            record = state.voices.get(change.address)
            budget = (
                (f"clones used {record.clones_used}/{record.limit}, {record.clones_left} left")
                if record
                else "orphaned"
            )
            lines.append(
                f"  {change.address:<{width}}  {change.action:<7}  voice "
                f"{voice_id or '-'}  {budget}"
            )
    one_time = sum(c.cost.one_time_cny for c, _ in done)
    monthly = sum(c.cost.monthly_cny_delta for c, _ in done)
    clones = sum(1 for c, _ in done if c.spends_clone)
    counts: dict[str, int] = {}
    for change, _ in done:
        counts[change.action] = counts.get(change.action, 0) + 1
    did = ", ".join(f"{n} {a}" for a, n in sorted(counts.items())) or "nothing"
    for change, error in sorted(failed, key=lambda item: item[0].address):
        lines.append(f"failed: {change.address}: {change.action}: {error}")
    for change in blocked:
        lines.append(f"blocked: {change.address}: {change.message}")
    spent = f"Clones spent: {clones}. Spent {one_time} CNY one-time, {monthly:+d} CNY/month."
    if failed or blocked:
        left = [f"{len(failed)} failed"] if failed else []
        left += [f"{len(blocked)} blocked"] if blocked else []
        done_text = f"done: {did}" if counts else "nothing was done"
        lines.append(f"Apply incomplete ({' and '.join(left)}, see above); {done_text}. {spent}")
    else:
        lines.append(f"Apply complete: {did}. {spent}")
    return "\n".join(lines) + "\n"


PLAN_RENDERERS: dict[str, Callable[[Plan], str]] = {
    "text": render_text,
    "json": render_json,
    "markdown": render_markdown,
}


WARNINGS_SHOWN = 3  # of one kind, unless --verbose


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


# What differs between two warnings of one kind: names, paths and numbers.
_WORDS = re.compile(r"'[^']*'|\S*/\S*|\d+(?:\.\d+)?")


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
    return json.dumps(body, indent=2, ensure_ascii=False) + "\n"
