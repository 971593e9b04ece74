"""voicectl's output as JSON: the one style every command's ``--json`` shares, and a
plan in it."""

from __future__ import annotations

from voicectl.files import jsontext
from voicectl.model import Plan
from voicectl.planfile import plan_to_json


def json_text(body: object) -> str:
    """The one JSON style of voicectl's output: sorted keys, 2-space indent, UTF-8."""
    return jsontext.dumps(body).decode()


def render_json(plan: Plan) -> str:
    return json_text(plan_to_json(plan))
