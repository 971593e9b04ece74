"""A fast yes/no check against one of voicectl's JSON Schemas, compiled from the schema.

jsonschema walks every keyword of every value through layers of generic machinery:
about 1 ms per state voice, seconds for ten thousand. Valid input is by far the common
case, so the schema (still the single source of truth) is compiled here into plain
closures that answer only "certainly valid"; anything else, and every keyword this
compiler does not know, goes to jsonschema, which finds and words the errors. The
check is conservative: it may send valid input to jsonschema (e.g. ``1.0`` given for an
integer), never pass input that jsonschema would refuse. ``format`` is an annotation,
as it is for the validators voicectl builds (no format checker).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from functools import cache
from typing import Any

Check = Callable[[Any], bool]

_IGNORED = frozenset({"$schema", "$id", "title", "description", "default", "format", "$comment"})
_TYPES: dict[str, Callable[[Any], bool]] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}
_EXACT_TYPES = {"object": dict, "array": list, "string": str, "boolean": bool, "null": type(None)}


class Unsupported(Exception):
    """The schema uses a keyword this compiler does not know: use jsonschema only."""


def _same(value: Any, expected: Any) -> bool:
    """JSON equality for scalars, where true is not 1; collections are left to jsonschema."""
    if isinstance(expected, (dict, list)):
        return False
    return type(value) is type(expected) and bool(value == expected)


class _Compiler:
    def __init__(self, root: dict[str, Any]) -> None:
        self.root = root
        self.defs: dict[str, Check] = {}

    def ref(self, ref: str) -> Check:
        prefix = "#/$defs/"
        if not ref.startswith(prefix) or ref[len(prefix) :] not in self.root.get("$defs", {}):
            raise Unsupported(ref)
        name = ref[len(prefix) :]
        if name not in self.defs:
            self.defs[name] = lambda v: False  # a recursive reference: refuse, do not loop
            self.defs[name] = self.compile(self.root["$defs"][name])
        compiled = self.defs
        return lambda v: compiled[name](v)

    def compile(self, schema: Any) -> Check:
        if schema is True:
            return lambda v: True
        if schema is False or not isinstance(schema, dict):
            return lambda v: False
        checks: list[Check] = []
        keys = set(schema) - _IGNORED - {"$defs"}
        for key in sorted(keys):
            checks.append(self.keyword(key, schema[key], schema))
        checks = [c for c in checks if c is not _ANY]
        if not checks:
            return lambda v: True
        if len(checks) == 1:
            return checks[0]
        return lambda v: all(c(v) for c in checks)

    def keyword(self, key: str, arg: Any, schema: dict[str, Any]) -> Check:
        if key == "type":
            names = [arg] if isinstance(arg, str) else list(arg)
            if any(n not in _TYPES for n in names):
                raise Unsupported(f"type {arg}")
            if len(names) == 1 and names[0] in _EXACT_TYPES:
                exact = _EXACT_TYPES[names[0]]
                return lambda v: type(v) is exact
            tests = [_TYPES[n] for n in names]
            return lambda v: any(t(v) for t in tests)
        if key == "enum":
            options = list(arg)
            return lambda v: any(_same(v, o) for o in options)
        if key == "const":
            return lambda v: _same(v, arg)
        if key == "pattern":
            search = re.compile(arg).search
            return lambda v: not isinstance(v, str) or search(v) is not None
        if key in ("minLength", "maxLength"):
            bound = int(arg)
            if key == "minLength":
                return lambda v: not isinstance(v, str) or len(v) >= bound
            return lambda v: not isinstance(v, str) or len(v) <= bound
        if key in ("minimum", "maximum"):
            limit = arg

            def number(v: Any) -> bool:
                return isinstance(v, (int, float)) and not isinstance(v, bool)

            if key == "minimum":
                return lambda v: not number(v) or v >= limit
            return lambda v: not number(v) or v <= limit
        if key == "minItems":
            least = int(arg)
            return lambda v: not isinstance(v, list) or len(v) >= least
        if key == "items":
            item = self.compile(arg)
            return lambda v: not isinstance(v, list) or all(item(i) for i in v)
        if key == "required":
            names = list(arg)
            return lambda v: not isinstance(v, dict) or all(n in v for n in names)
        if key == "allOf":
            parts = [self.compile(s) for s in arg]
            return lambda v: all(p(v) for p in parts)
        if key == "$ref":
            return self.ref(arg)
        if key == "propertyNames":
            name = self.compile(arg)
            return lambda v: not isinstance(v, dict) or all(name(k) for k in v)
        if key == "properties":
            if "additionalProperties" in schema:
                return _ANY  # checked together with additionalProperties
            return self.properties(arg, True)
        if key == "additionalProperties":
            return self.properties(schema.get("properties", {}), arg)
        raise Unsupported(key)

    def properties(self, props: dict[str, Any], extra: Any) -> Check:
        known = {name: self.compile(s) for name, s in props.items()}
        if extra is True:
            other: Check | None = None
        elif extra is False:
            other = _NONE
        else:
            other = self.compile(extra)

        def check(v: Any) -> bool:
            if not isinstance(v, dict):
                return True
            for name, value in v.items():
                test = known.get(name, other)
                if test is not None and not test(value):
                    return False
            return True

        return check


def _any(v: Any) -> bool:
    return True


def _none(v: Any) -> bool:
    return False


_ANY: Check = _any
_NONE: Check = _none


def compile_schema(schema: dict[str, Any]) -> Check | None:
    """A yes/no checker for ``schema``, or None if it uses a keyword not known here."""
    try:
        return _Compiler(schema).compile(schema)
    except (Unsupported, re.error, TypeError, ValueError):
        return None


@cache
def checker(name: str) -> Check | None:
    """The compiled check for voicectl's schema ``name`` (read from the one schema dir)."""
    from voicectl.schemas import schema_path

    with open(schema_path(name), encoding="utf-8") as handle:
        return compile_schema(json.load(handle))


def surely_valid(name: str, data: Any) -> bool:
    """True when ``data`` certainly passes schema ``name``; False means: ask jsonschema."""
    check = checker(name)
    return check is not None and check(data)
