"""Renderers: functions from a Plan (or problems) to a string, chosen by format name."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

from voicectl.errors import Problem
from voicectl.model import ACTIONS, Change, Plan, State
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


def render_text(plan: Plan) -> str:
    shown = [c for c in plan.changes if c.action != "noop"]
    notes = [(c.address, n) for c in plan.changes for n in c.notes]
    lines: list[str] = []
    if shown:
        width = max(len(c.address) for c in shown)
        for c in shown:
            reasons = ", ".join(c.reasons)
            if c.from_address:
                reasons += f" (from {c.from_address})"
            lines.append(
                f"{SYMBOLS[c.action]:>3} {c.address:<{width}}  {c.action:<7}  "
                f"{reasons}  [clones left {_budget(c)}]  {_cost(c)}"
            )
            if c.message:
                lines.append(f"{'':>3} {'':<{width}}  {c.message}")
    for address, note in notes:
        lines.append(f"note: {address}: {note}")
    if not plan.has_changes:
        lines.append("No changes.")
    else:
        if lines:
            lines.append("")
        lines.append(summary_line(plan))
    return "\n".join(lines) + "\n"


def _md_cell(value: object) -> str:
    text = "" if value is None else str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def _field_rows(change: Change) -> list[tuple[str, object, object]]:
    before, after = change.before or {}, change.after or {}
    rows = []
    for key in ("name", "language", "space", "text", "preview_text", "protect"):
        if before.get(key) != after.get(key):
            rows.append((key, before.get(key), after.get(key)))
    for key in ("sha256", "path", "format", "size", "duration"):
        old = (before.get("audio") or {}).get(key)
        new = (after.get("audio") or {}).get(key)
        if old != new:
            if key == "sha256":
                old, new = (old or "")[:12] or None, (new or "")[:12] or None
            rows.append((f"audio.{key}", old, new))
    return rows


def render_markdown(plan: Plan) -> str:
    """A pull-request comment: the summary first, a table, then collapsed details."""
    if not plan.has_changes:
        return "### voicectl plan\n\n**No changes.**\n"
    out = [
        "### voicectl plan",
        "",
        f"**{summary_line(plan)}**",
        "",
        "| | address | action | reasons | clones left | cost |",
        "|---|---|---|---|---|---|",
    ]
    shown = [c for c in plan.changes if c.action != "noop"]
    for c in shown:
        out.append(
            f"| `{SYMBOLS[c.action]}` | `{c.address}` | {c.action} | "
            f"{_md_cell(', '.join(c.reasons))} | {_budget(c)} | {_cost(c)} |"
        )
    out.append("")
    for c in shown:
        out += ["<details>", f"<summary><code>{c.address}</code>: {c.action}</summary>", ""]
        if c.message:
            out += [_md_cell(c.message), ""]
        rows = _field_rows(c)
        if rows:
            out += ["| field | before | after |", "|---|---|---|"]
            out += [f"| {k} | {_md_cell(b)} | {_md_cell(a)} |" for k, b, a in rows]
            out.append("")
        out += ["</details>", ""]
    return "\n".join(out)


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
    verdict = "Apply finished with errors" if failed or blocked else "Apply complete"
    lines.append(
        f"{verdict}: {did}. Clones spent: {clones}. Spent {one_time} CNY one-time, "
        f"{monthly:+d} CNY/month."
    )
    return "\n".join(lines) + "\n"


PLAN_RENDERERS: dict[str, Callable[[Plan], str]] = {
    "text": render_text,
    "json": render_json,
    "markdown": render_markdown,
}


def render_problems(problems: Sequence[Problem]) -> str:
    return "".join(p.render() + "\n" for p in problems)


def problems_json(problems: Sequence[Problem], files: int, voices: int) -> str:
    errors = sum(1 for p in problems if p.severity == "error")
    body = {
        "valid": errors == 0,
        "files": files,
        "voices": voices,
        "errors": errors,
        "warnings": len(problems) - errors,
        "problems": [p.to_json() for p in problems],
    }
    return json.dumps(body, indent=2, ensure_ascii=False) + "\n"
