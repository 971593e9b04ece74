"""Plans and changes as JSON (schemas/plan.schema.json), and back."""

from __future__ import annotations

from typing import Any

from voicectl.model import Action, AudioSpec, Budget, Change, Cost, Plan, TakeVerdict, VoiceSpec

PLAN_FORMAT_VERSION = 1


def spec_to_json(spec: VoiceSpec | None) -> dict[str, Any] | None:
    """A change's voice as the plan file and the journal spell it."""
    if spec is None:
        return None
    a = spec.audio
    audio: dict[str, Any] = {
        "sha256": a.sha256,
        "path": a.path,
        "format": a.format,
        "size": a.size,
        "duration": a.duration,
    }
    if not a.verified:
        audio["verified"] = False
    return {
        "name": spec.name,
        "language": spec.language,
        "space": spec.space,
        "text": spec.text,
        "preview_text": spec.preview_text,
        "protect": spec.protect,
        "audio": audio,
    }


def spec_from_json(item: dict[str, Any] | None) -> VoiceSpec | None:
    if item is None:
        return None
    a = item["audio"]
    audio = AudioSpec(
        sha256=a["sha256"],
        path=a["path"],
        format=a["format"],
        size=a["size"],
        duration=a["duration"],
        verified=a.get("verified", True),
    )
    return VoiceSpec(
        name=item["name"],
        language=item["language"],
        space=item.get("space"),
        text=item["text"],
        preview_text=item.get("preview_text"),
        protect=item.get("protect"),
        audio=audio,
    )


def change_to_json(c: Change) -> dict[str, Any]:
    item: dict[str, Any] = {
        "address": c.address,
        "action": c.action.value,
        "reasons": list(c.reasons),
        "voice_id": c.voice_id,
        "before": spec_to_json(c.before),
        "after": spec_to_json(c.after),
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
        action=Action(item["action"]),
        reasons=tuple(item["reasons"]),
        voice_id=item["voice_id"],
        before=spec_from_json(item["before"]),
        after=spec_from_json(item["after"]),
        budget=Budget(before=budget["before"], after=budget["after"], limit=budget["limit"]),
        cost=Cost(cost["one_time_cny"], cost["monthly_cny_delta"]),
        from_address=item.get("from_address"),
        message=item.get("message", ""),
        notes=tuple(item.get("notes", ())),
    )


def verdict_from_json(body: dict[str, Any]) -> TakeVerdict:
    figures = {k: v for k, v in body.items() if k != "warnings"}
    return TakeVerdict(figures, tuple(body.get("warnings", ())))


def plan_to_json(plan: Plan) -> dict[str, Any]:
    """The plan in the documented format of schemas/plan.schema.json."""
    cost = plan.cost
    return {
        "format_version": PLAN_FORMAT_VERSION,
        "changes": [change_to_json(c) for c in plan.changes],
        "summary": plan.summary,
        "cost": {"one_time_cny": cost.one_time_cny, "monthly_cny_delta": cost.monthly_cny_delta},
        "clones_spent": plan.clones_spent,
        "speech_calls": plan.speech_calls,
        # every note in one list, unchanged voices' included: what a reviewer must read
        "notes": [{"address": c.address, "note": n} for c in plan.changes for n in c.notes],
        "warnings": list(plan.warnings),
        "takes": {sha: verdict.to_json() for sha, verdict in sorted(plan.takes.items())},
    }
