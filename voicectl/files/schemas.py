"""The JSON Schemas: found in one place, compiled once, their findings told in YAML's words.

The files live in ``schemas/`` at the project root (the single source of truth). A
wheel carries them inside the package as ``voicectl/schemas``; a source checkout or an
editable install reads them from the project root.
"""

from __future__ import annotations

import hashlib
import json
from datetime import date, datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from voicectl.files.yamldoc import Document, Path_, dotted, show

if TYPE_CHECKING:  # jsonschema costs ~100 ms to import: only when a check needs it
    from jsonschema import Draft202012Validator, ValidationError

NAMES = ("config", "voices", "state", "plan")


def schema_dir() -> Path:
    package = Path(__file__).resolve().parents[1]  # voicectl/, in a wheel or a checkout
    for candidate in (package / "schemas", package.parent / "schemas"):
        if (candidate / "voices.schema.json").is_file():
            return candidate
    raise FileNotFoundError("voicectl's JSON Schemas are missing from this installation")


def schema_path(name: str) -> Path:
    if name not in NAMES:
        raise KeyError(name)
    return schema_dir() / f"{name}.schema.json"


@cache
def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(schema_path(name).read_text(encoding="utf-8"))
    return data


@cache
def digest(name: str) -> str:
    """sha256 of schema ``name``'s file: part of every cache key that trusts a check."""
    return hashlib.sha256(schema_path(name).read_bytes()).hexdigest()


def _integer(_checker: object, value: object) -> bool:
    return type(value) is int


@cache
def validator(name: str) -> Draft202012Validator:
    """A validator compiled once per process for the named schema.

    An integer is an integer as JSON and YAML write it: JSON Schema counts ``1.0`` as one,
    but a state, plan or declaration holding ``1.0`` for a count or a format version was
    not written by voicectl, and is refused like any other wrong type.
    """
    from jsonschema import Draft202012Validator, validators

    checker = Draft202012Validator.TYPE_CHECKER.redefine("integer", _integer)
    strict = validators.extend(Draft202012Validator, type_checker=checker)  # type: ignore[no-untyped-call]
    return cast("Draft202012Validator", strict(load(name)))


def report(doc: Document, schema: str) -> None:
    """Add every way ``doc.data`` fails the named schema to ``doc``, in the user's words."""
    for error in sorted(validator(schema).iter_errors(doc.data), key=_error_key):
        if not doc.was_reported(tuple(error.absolute_path)):
            _report_schema_error(doc, error)


def _error_key(error: ValidationError) -> tuple[str, str]:
    return (dotted(tuple(error.absolute_path)), error.message)


_KINDS = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "object": "a mapping",
    "array": "a list",
    "null": "empty",
}


def kind(value: object) -> str:
    """What a YAML value is, in YAML's words (the user never wrote Python)."""
    if value is None:
        return "empty (null)"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, (int, float)):
        return f"the number {show(value)}"
    if isinstance(value, str):
        return f"the string {show(value)}"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, (date, datetime)):
        return f"the date {value.isoformat()} (quote it to make it text)"
    return type(value).__name__


def _report_schema_error(doc: Document, error: ValidationError) -> None:
    path: Path_ = tuple(error.absolute_path)
    rule = error.validator
    required: Any = error.validator_value
    schema = error.schema if isinstance(error.schema, dict) else {}
    instance = error.instance
    if "propertyNames" in error.relative_schema_path:
        bad = str(instance)
        doc.problem(
            (*path, bad),
            f"address {show(bad)} must be at most 128 lower-case letters, digits, "
            "'_', '.' or '-', starting with a letter or digit",
            key=True,
        )
        return
    if rule == "additionalProperties" and isinstance(instance, dict):
        allowed = set(schema.get("properties", {}))
        hint = ", ".join(sorted(allowed))
        for extra in sorted(str(k) for k in instance if k not in allowed):
            doc.problem((*path, extra), f"unknown field {show(extra)} (allowed: {hint})", key=True)
        return
    if rule == "required" and isinstance(instance, dict):
        for name in required:
            if name not in instance:
                where = (*path, name)
                doc.problem(path, f"{name} is required", key=True, field_name=dotted(where))
        return
    doc.problem(path, _message(error, path, instance))


def _message(error: ValidationError, path: Path_, instance: object) -> str:
    rule = error.validator
    expected: Any = error.validator_value
    if rule == "type":
        names = [expected] if isinstance(expected, str) else list(expected)
        wanted = " or ".join(_KINDS.get(str(n), str(n)) for n in names)
        return f"must be {wanted}, not {kind(instance)}"
    if rule == "enum":
        options = ", ".join(str(v) for v in expected) if isinstance(expected, list) else expected
        if isinstance(instance, str):
            return f"{show(instance)} is not one of {options}"
        said = f"must be one of {options}, not {kind(instance)}"
        if isinstance(instance, bool):  # `language: no` is YAML 1.1's false
            said += " (YAML reads a bare no, yes, on or off as a boolean: quote it)"
        return said
    if rule == "pattern" and path and path[-1] == "api_base":
        return f"{show(instance)} is not an http(s) URL, e.g. https://api.coze.cn"
    if rule == "pattern" and path and path[-1] == "space":
        return f"{show(instance)} is not a Coze workspace id (digits only)"
    if rule == "pattern":
        return f"{show(instance)} does not match the pattern {expected}"
    if rule == "minLength":
        return "must not be empty"
    if rule == "minItems":
        return f"must list at least {expected}"
    if rule == "minimum":
        return f"must be at least {expected}, not {show(instance)}"
    message = error.message
    return message if len(message) <= 200 else message[:197] + "..."
