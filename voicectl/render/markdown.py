"""The plan as a pull-request comment: the summary line first, a table of changes with
budgets, then collapsed details per voice, within GitHub's size limit."""

from __future__ import annotations

import difflib

from voicectl.errors import visible
from voicectl.model import Action, Change, Plan
from voicectl.plan.fielddiff import changed_fields
from voicectl.planfile import spec_to_json
from voicectl.render.columns import SYMBOLS, budget_text, cost_text, reasons_text, summary_line
from voicectl.render.mdtext import audio_facts, md_cell, md_value, short

MARKDOWN_LIMIT = 65_536
"""GitHub's limit on a pull-request comment, in characters."""
MARKDOWN_MARKER = "<!-- voicectl-plan -->"
"""Ends every markdown plan, so a CI job can find its comment and update it in place."""
TAKE_FIELDS = ("text", "audio")  # shown as a diff and as the two takes, not as rows
WARNINGS_IN_COMMENT = 20


def render_markdown(plan: Plan, limit: int = MARKDOWN_LIMIT) -> str:
    """A pull-request comment: the summary line first, a table of changes with budgets,
    then collapsed details per voice; at most ``limit`` characters, shortening the
    details (then the table) and never the summary; the same plan gives the same text."""
    if not plan.has_changes:
        return _no_changes(plan, limit)
    head = [f"**{summary_line(plan)}**", ""]
    head += _md_notes(plan, limit // 4)
    head += _md_warnings(plan)
    shown = [c for c in plan.changes if c.action != Action.NOOP]
    rows = [
        "| | address | action | reasons | clones left | cost | take |",
        "|---|---|---|---|---|---|---|",
    ]
    rows += [
        f"| `{SYMBOLS[c.action]}` | `{c.address}` | {c.action} | "
        f"{md_cell(short(reasons_text(c), 80))} | {budget_text(c)} | {cost_text(c)} | "
        f"{_take_verdict(plan, c)} |"
        for c in shown
    ]
    tail = ["", MARKDOWN_MARKER, ""]
    reserve = 200  # for the "omitted" lines
    budget = limit - _size(head) - _size(tail) - reserve
    table: list[str] = []
    for n, row in enumerate(rows):
        if _size(table) + len(row) + 1 > budget:
            table.append(
                f"\n*…and {len(rows) - n} more change(s), not shown: the comment limit is "
                f"{limit:,} characters; `voicectl show` on the saved plan lists them all.*"
            )
            break
        table.append(row)
    table.append("")
    budget -= _size(table)
    details: list[str] = []
    for n, change in enumerate(shown):
        block = _details(change)
        if _size(details) + _size(block) > budget:
            details.append(
                f"*Details of {len(shown) - n} more change(s) left out to stay under "
                f"{limit:,} characters.*"
            )
            details.append("")
            break
        details += block
    return "\n".join([*head, *table, *details, *tail]).rstrip("\n") + "\n"


def _take_verdict(plan: Plan, change: Change) -> str:
    """The quality verdict on the take a change clones (policy.takes): ok, or its first
    warning and how many more; — for a change that clones nothing."""
    verdict = plan.takes.get(change.after.audio.sha256) if change.after else None
    if verdict is None or not change.spends_clone:
        return "—"
    if not verdict.warnings:
        return "ok"
    more = f" (+{len(verdict.warnings) - 1})" if len(verdict.warnings) > 1 else ""
    return f"⚠ {md_cell(short(verdict.warnings[0], 60))}{more}"


def _size(lines: list[str]) -> int:
    return sum(len(line) + 1 for line in lines)


def _no_changes(plan: Plan, limit: int) -> str:
    """The comment of a plan with nothing to do to Coze: its notes and warnings."""
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


def _details(change: Change) -> list[str]:
    """The collapsed section of one change: message, field diffs, audio, text diff."""
    before, after = spec_to_json(change.before) or {}, spec_to_json(change.after) or {}
    title = f"<code>{change.address}</code>: {change.action}"
    if change.from_address and change.from_address != change.address:
        title += f" (from <code>{change.from_address}</code>)"
    out = ["<details>", f"<summary>{title}</summary>", ""]
    if change.message:
        out += [md_cell(change.message), ""]
    changed = changed_fields(change.before, change.after)
    rows = [(k, *pair) for k, pair in changed.items() if k.partition(".")[0] not in TAKE_FIELDS]
    old_audio, new_audio = before.get("audio"), after.get("audio")
    cells = [(k, md_value(b), md_value(a)) for k, b, a in rows]
    if any(field.partition(".")[0] == "audio" for field in changed):  # safe: code spans
        cells.append(("audio", audio_facts(old_audio), audio_facts(new_audio)))
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
        out += [f"> {md_cell(note)}", ""]
    out += ["</details>", ""]
    return out


def _md_warnings(plan: Plan) -> list[str]:
    """The repository's warnings (already grouped by kind), collapsed: a stereo or 8 kHz
    take is the reviewer's to see, not only the log's."""
    if not plan.warnings:
        return []
    shown = plan.warnings[:WARNINGS_IN_COMMENT]
    more = len(plan.warnings) - len(shown)
    out = ["<details>", f"<summary>{len(plan.warnings)} warning(s)</summary>", ""]
    out += [f"- {md_cell(line)}" for line in shown]
    if more:
        out.append(f"- *…and {more} more; `voicectl validate` lists them.*")
    return [*out, "", "</details>", ""]


def _md_notes(plan: Plan, budget: int) -> list[str]:
    """The notes of voices the plan leaves unchanged (a changed voice's are in its
    details), as a quoted list within ``budget`` characters: what a reviewer must not miss
    even when nothing is to be cloned, such as a voice recorded as unproven."""
    notes = [(c.address, n) for c in plan.changes if c.action == Action.NOOP for n in c.notes]
    if not notes:
        return []
    # A voice that may be someone else's comes first: it must not be in "…and N more".
    notes.sort(key=lambda note: " is unproven: " not in note[1])
    out, used = ["Notes:", ""], 10
    for n, (address, note) in enumerate(notes):
        line = f"> `{address}`: {md_cell(note)}"
        if used + len(line) + 3 > budget - 200:
            out += [f"*…and {len(notes) - n} more note(s); `voicectl plan` shows them all.*", ""]
            break
        out += [line, ">"]
        used += len(line) + 3
    if out[-1] == ">":
        out[-1] = ""
    return out
