"""The columns every plan format shows of a change (symbol, reasons, clones left,
cost) and the summary line that heads the text plan and the pull-request comment."""

from __future__ import annotations

from voicectl.model import ACTIONS, Change, Plan

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


def budget_text(change: Change) -> str:
    """The clones left on the voice id, before -> after."""
    b = change.budget
    before = "new" if b.before is None else str(b.before)
    after = "none" if b.after is None else str(b.after)
    return f"{before} -> {after}"


def cost_text(change: Change) -> str:
    c = change.cost
    if not c.one_time_cny and not c.monthly_cny_delta:
        return "0 CNY"
    return f"{c.one_time_cny} CNY + {c.monthly_cny_delta} CNY/month"


def reasons_text(change: Change) -> str:
    """Why, in the plan's words; a move says where from (an orphan taken back at its own
    address is not a move from anywhere)."""
    said = ", ".join(change.reasons)
    if change.from_address and change.from_address != change.address:
        said += f" (from {change.from_address})"
    return said


def summary_line(plan: Plan) -> str:
    counts = plan.summary
    parts = [f"{counts[a]} {VERBS[a]}" for a in ACTIONS if a != "noop" and counts[a]]
    cost = plan.cost
    speech = (
        f" Speech calls: up to {plan.speech_calls} (billed by Coze), to keep the retrained "
        "voices' sound before and after (--no-snapshot: none)."
        if plan.speech_calls
        else ""
    )
    return (
        f"Plan: {', '.join(parts)}. Clones spent: {plan.clones_spent}. Cost: "
        f"{cost.one_time_cny} CNY one-time, {cost.monthly_cny_delta:+d} CNY/month.{speech}"
    )
