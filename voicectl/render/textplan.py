"""The plan as a terminal reads it: one line a change, its message and what changed
field by field, then the notes and the summary line."""

from __future__ import annotations

from voicectl.errors import visible
from voicectl.model import ACTIONS, Action, Change, Plan
from voicectl.plan.fielddiff import Budget, describe_take, field_changes
from voicectl.planfile import spec_to_json
from voicectl.render.columns import SYMBOLS, budget_text, cost_text, reasons_text, summary_line

WORD_DIFF_SECONDS = 2.0  # of word diffs in one text plan; the rest show texts whole
FIELD_DIFFS_SHOWN = 1_000
"""Changes whose fields the text plan spells out; past them (deepdiff costs about 0.25 ms
a change) the plan says how to see the rest."""


def render_text(plan: Plan) -> str:
    shown = [c for c in plan.changes if c.action != Action.NOOP]
    notes = [(c.address, n) for c in plan.changes for n in c.notes]
    lines: list[str] = []
    budget = Budget(WORD_DIFF_SECONDS)
    if shown:
        used = [a for a in ACTIONS if any(c.action == a for c in shown)]
        lines.append("Symbols: " + ", ".join(f"{SYMBOLS[a]} {a}" for a in used))
        width = max(len(c.address) for c in shown)
        for n, c in enumerate(shown):
            lines.append(
                f"{SYMBOLS[c.action]:>3} {c.address:<{width}}  {c.action:<7}  "
                f"{reasons_text(c)}  [clones left {budget_text(c)}]  {cost_text(c)}"
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


def _what_changed(change: Change, budget: Budget | None = None) -> list[str]:
    """The fields that differ, or for a new voice (created or blocked) its take."""
    if not change.before:
        after = spec_to_json(change.after)
        return [f"audio: {describe_take(after['audio'])}"] if after else []
    changed = field_changes(change.before, change.after, budget)
    width = max((len(field) for field, _ in changed), default=0)
    return [f"{field + ':':<{width + 1}} {said}" for field, said in changed]
