"""Plans and changes as JSON (schemas/plan.schema.json), and back."""

from __future__ import annotations

from typing import Any

from voicectl.model import Budget, Change, Cost, Plan

PLAN_FORMAT_VERSION = 1


def change_to_json(c: Change) -> dict[str, Any]:
    item: dict[str, Any] = {
        "address": c.address,
        "action": c.action,
        "reasons": list(c.reasons),
        "voice_id": c.voice_id,
        "before": c.before,
        "after": c.after,
        "budget": {"limit": c.budget.limit, "before": c.budget.before, "after": c.budget.after},
        "cost": {
            "one_time_cny": c.cost.one_time_cny,
            "monthly_cny_delta": c.cost.monthly_cny_delta,
        },
    }
    if c.from_address:
        item["from_address"] = c.from_address
    if c.message:
        item["message"] = c.message
    if c.notes:
        item["notes"] = list(c.notes)
    return item


def change_from_json(item: dict[str, Any]) -> Change:
    budget, cost = item["budget"], item["cost"]
    return Change(
        address=item["address"],
        action=item["action"],
        reasons=tuple(item["reasons"]),
        voice_id=item["voice_id"],
        before=item["before"],
        after=item["after"],
        budget=Budget(before=budget["before"], after=budget["after"], limit=budget["limit"]),
        cost=Cost(cost["one_time_cny"], cost["monthly_cny_delta"]),
        from_address=item.get("from_address"),
        message=item.get("message", ""),
        notes=tuple(item.get("notes", ())),
    )


def plan_to_json(plan: Plan) -> dict[str, Any]:
    """The plan in the documented format of schemas/plan.schema.json."""
    cost = plan.cost
    return {
        "format_version": PLAN_FORMAT_VERSION,
        "changes": [change_to_json(c) for c in plan.changes],
        "summary": plan.summary,
        "cost": {"one_time_cny": cost.one_time_cny, "monthly_cny_delta": cost.monthly_cny_delta},
        "clones_spent": plan.clones_spent,
        # every note in one list, unchanged voices' included: what a reviewer must read
        "notes": [{"address": c.address, "note": n} for c in plan.changes for n in c.notes],
        "warnings": list(plan.warnings),
    }
