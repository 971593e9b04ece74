"""The apply journal's records, checked as they are read: each kind's keys and types.

A journal is voicectl's own file, but it lies in the repository beside the state, where
a hand, a merge or a failing disk can change it, and what replay folds from it goes
into the state. So a record is taken only when every field it has is of its kind and
every field its kind needs is there: a voice's fields as the state schema
(schemas/state.schema.json) wants what they become, an action's voice id where the
action needs one. :func:`check` names the first field that is not, dotted
(``change.after.audio.size``). Fields it does not know are left alone: a later
voicectl may write more. Pure: no I/O.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from typing import Any

from voicectl.model import ADDRESS_PATTERN, AUDIO_FORMATS, LANGUAGES, NEW_VOICE_ACTIONS

JOURNALED_ACTIONS = ("create", "retrain", "replace", "move", "update", "orphan")
KINDS = ("begin", "pending", "done", "failed")

Kind = tuple[str, Callable[[Any], bool]]  # what a value must be, in words, and the test
Spec = Mapping[str, tuple[Kind, bool]]  # each field: its kind, and whether it is required


class Damaged(Exception):
    """A record's ``field`` is missing or not of its kind (``field`` "": the record)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"field {field}: {message}" if field else message)
        self.field, self.message = field, message


def _pattern(pattern: str) -> Callable[[Any], bool]:
    regex = re.compile(pattern)
    return lambda v: isinstance(v, str) and regex.fullmatch(v) is not None


def _one_of(options: tuple[str, ...]) -> Kind:
    return (f"one of {', '.join(options)}", lambda v: isinstance(v, str) and v in options)


def _or_null(kind: Kind) -> Kind:
    words, test = kind
    return (f"{words} or null", lambda v: v is None or test(v))


def _integer(v: Any) -> bool:
    return type(v) is int  # JSON's: never a boolean


def _number(v: Any) -> bool:
    return (type(v) is int or type(v) is float) and math.isfinite(v)


STRING: Kind = ("a string", lambda v: isinstance(v, str))
STRINGS: Kind = (
    "a list of strings",
    lambda v: isinstance(v, list) and all(isinstance(i, str) for i in v),
)
BOOLEAN: Kind = ("true or false", lambda v: isinstance(v, bool))
OBJECT: Kind = ("an object", lambda v: isinstance(v, dict))
INTEGER: Kind = ("an integer", _integer)
COUNT: Kind = ("an integer of 0 or more", lambda v: _integer(v) and v >= 0)
SEQ: Kind = ("an integer of 1 or more", lambda v: _integer(v) and v >= 1)
SECONDS: Kind = ("a number of 0 or more", lambda v: _number(v) and v >= 0)
VOICE_ID: Kind = ("a Coze voice id (a string of digits)", _pattern(r"[0-9]{1,32}"))
VOICE_IDS: Kind = (
    "a list of Coze voice ids",
    lambda v: isinstance(v, list) and all(VOICE_ID[1](i) for i in v),
)
ADDRESS: Kind = (
    "an address (lower-case letters, digits, '_', '.', '-')",
    _pattern(ADDRESS_PATTERN),
)
TIMESTAMP: Kind = (
    "a timestamp (e.g. 2027-01-15T08:00:00Z)",
    _pattern(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T.*"),
)
LINEAGE: Kind = (
    "a state's lineage (a UUID)",
    _pattern(r"[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}"),
)
SHA256: Kind = ("a SHA-256 (64 hex digits)", _pattern(r"[0-9a-f]{64}"))
COMMIT: Kind = ("a git commit id (hex digits)", _pattern(r"[0-9a-f]{7,64}"))

_BEGIN: Spec = {
    "lineage": (LINEAGE, True),
    "serial": (COUNT, True),
    "at": (STRING, False),
    "commit": (COMMIT, False),
    "uncommitted": (BOOLEAN, False),
    "empty": (BOOLEAN, False),
    "account": (OBJECT, False),
}
_ACCOUNT: Spec = {"api_base": (STRING, False), "salt": (STRING, False), "key": (STRING, False)}
_PENDING: Spec = {
    "seq": (SEQ, True),
    "change": (OBJECT, True),
    "started_at": (STRING, True),
    "started_unix": (SECONDS, True),
    "before": (OBJECT, False),
}
# What Coze showed before the clone was sent (voicectl.apply.reconcile.witness).
_WITNESS: Spec = {
    "ids": (STRINGS, False),
    "listed_at": (SECONDS, False),
    "absent": (BOOLEAN, False),
    "update_time": (INTEGER, False),
    "available_training_times": (INTEGER, False),
}
_DONE: Spec = {
    "seq": (SEQ, True),
    "at": (TIMESTAMP, True),  # the voice's created_at or updated_at in the state
    "voice_id": (_or_null(VOICE_ID), True),
    "logid": (STRING, False),
    "reconciled": (BOOLEAN, False),
    "unproven": (STRING, False),
    "passed_over": (VOICE_IDS, False),
}
_FAILED: Spec = {"seq": (SEQ, True), "at": (STRING, True), "error": (STRING, True)}
_CHANGE: Spec = {
    "address": (ADDRESS, True),
    "action": (_one_of(JOURNALED_ACTIONS), True),
    "reasons": (STRINGS, True),
    "voice_id": (_or_null(VOICE_ID), True),
    "before": (_or_null(OBJECT), True),
    "after": (_or_null(OBJECT), True),
    "budget": (OBJECT, True),
    "cost": (OBJECT, True),
    "from_address": (STRING, False),
    "message": (STRING, False),
    "notes": (STRINGS, False),
}
_BUDGET: Spec = {
    "limit": (INTEGER, True),
    "before": (_or_null(INTEGER), True),
    "after": (_or_null(INTEGER), True),
}
_COST: Spec = {"one_time_cny": (COUNT, True), "monthly_cny_delta": (INTEGER, True)}
# A voice as a change leaves it; a clone needs every field but the optional three.
_VOICE: Spec = {
    "name": (STRING, True),
    "language": (_one_of(LANGUAGES), True),
    "text": (STRING, True),
    "audio": (OBJECT, True),
    "space": (_or_null(STRING), False),
    "preview_text": (_or_null(STRING), False),
    "protect": (_or_null(BOOLEAN), False),
}
_AUDIO: Spec = {
    "sha256": (SHA256, True),
    "path": (STRING, True),
    "format": (_one_of(AUDIO_FORMATS), True),
    "size": (COUNT, True),
    "duration": (SECONDS, True),
}


def shown(value: Any) -> str:
    """A value, briefly, in JSON's words."""
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, (int, float)):
        return repr(value) if math.isfinite(value) else str(value)
    if isinstance(value, str):
        return json.dumps(value if len(value) <= 40 else value[:40] + "…")
    return "a list" if isinstance(value, list) else "an object"


def _fields(record: Mapping[str, Any], spec: Spec, at: str = "", *, all_: bool = True) -> None:
    """Each field of ``spec`` in ``record`` of its kind; the required ones there, unless
    ``all_`` is False (then only those present are checked)."""
    for name, ((words, test), required) in spec.items():
        if name not in record:
            if required and all_:
                raise Damaged(at + name, "is missing")
            continue
        value = record[name]
        if not test(value):
            raise Damaged(at + name, f"must be {words}, not {shown(value)}")


def check(record: Any) -> dict[str, Any]:
    """``record``, when it is a whole journal record; else Damaged names what is not."""
    if not isinstance(record, dict):
        raise Damaged("", f"the line is {shown(record)}, not a record (a JSON object)")
    kind = record.get("type")
    if kind not in KINDS:
        said = "is missing" if "type" not in record else f"is {shown(kind)}"
        raise Damaged("type", f"{said}; a record's type is one of {', '.join(KINDS)}")
    if kind == "begin":
        _fields(record, _BEGIN)
        _fields(record.get("account", {}), _ACCOUNT, "account.")
    elif kind == "pending":
        _fields(record, _PENDING)
        _change(record["change"])
        _fields(record.get("before", {}), _WITNESS, "before.")
        if "update_time" in record.get("before", {}):
            _fields(record["before"], {"available_training_times": (INTEGER, True)}, "before.")
    elif kind == "done":
        _fields(record, _DONE)
    else:
        _fields(record, _FAILED)
    return record


def _change(change: dict[str, Any]) -> None:
    """A change as replay folds it: what its action reads of it, there and of its kind."""
    _fields(change, _CHANGE, "change.")
    _fields(change["budget"], _BUDGET, "change.budget.")
    _fields(change["cost"], _COST, "change.cost.")
    action, after = change["action"], change["after"]
    if action != "orphan" and after is None:
        raise Damaged("change.after", f"must be an object for a {action}, not null")
    if after is not None:
        cloned = action in ("create", "retrain", "replace")
        _fields(after, _VOICE, "change.after.", all_=cloned)
        audio = after.get("audio", {})
        _fields(audio, _AUDIO, "change.after.audio.", all_=cloned)
        if action in ("move", "update") and "path" not in audio:
            raise Damaged("change.after.audio.path", f"is missing (a {action} moves the take)")
    if change["voice_id"] is None and action not in NEW_VOICE_ACTIONS:
        raise Damaged("change.voice_id", f"must be the voice's id for a {action}, not null")
