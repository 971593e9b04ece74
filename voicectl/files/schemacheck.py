"""A fast yes/no check against one of voicectl's JSON Schemas, compiled from the schema.

jsonschema walks every keyword of every value through layers of generic machinery:
about 1 ms per state voice, seconds for ten thousand. Valid input is by far the common
case, so the schema (still the single source of truth) is compiled here into Python
source, a function per subschema with leaf checks inlined, that answers only "certainly
valid"; anything else, and every keyword this compiler does not know, goes to
jsonschema, which finds and words the errors. The
check is conservative: it may send valid input to jsonschema, never pass input that
jsonschema would refuse (an integer is a Python ``int`` in both: see
:func:`voicectl.files.schemas.validator`). ``format`` is an annotation,
as it is for the validators voicectl builds (no format checker).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cache
from typing import Any

from voicectl.files import schemas

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
    """Writes one Python function per subschema: leaf checks are inlined as expressions,
    so a record of a dozen fields costs one call rather than dozens of closure calls."""

    def __init__(self, root: dict[str, Any]) -> None:
        self.root = root
        self.lines: list[str] = []
        self.names: dict[str, Any] = {"_same": _same, "_num": _num}
        self.defs: dict[str, str] = {}
        self.count = 0

    def constant(self, value: Any) -> str:
        self.count += 1
        name = f"_c{self.count}"
        self.names[name] = value
        return name

    def ref(self, ref: str) -> str:
        prefix = "#/$defs/"
        defs = self.root.get("$defs", {})
        if not ref.startswith(prefix) or ref[len(prefix) :] not in defs:
            raise Unsupported(ref)
        name = ref[len(prefix) :]
        if name not in self.defs:
            self.count += 1
            self.defs[name] = f"_d{self.count}"
            self.function(defs[name], self.defs[name])
        return self.defs[name]

    def function(self, schema: Any, name: str | None = None) -> str:
        """Name of a function ``(v) -> bool`` checking ``schema``."""
        if name is None:
            self.count += 1
            name = f"_f{self.count}"
        body = self.tests(schema, "v")
        self.lines.append(f"def {name}(v):")
        for test in body:
            self.lines.append(f"    if not ({test}): return False")
        self.lines.append("    return True")
        return name

    def tests(self, schema: Any, v: str) -> list[str]:
        """Expressions, all true exactly when ``v`` passes ``schema`` (conservatively)."""
        if schema is True:
            return []
        if schema is False or not isinstance(schema, dict):
            return ["False"]
        tests: list[str] = []
        for key in sorted(set(schema) - _IGNORED - {"$defs"}):
            tests.extend(self.keyword(key, schema[key], schema, v))
        return tests

    def keyword(self, key: str, arg: Any, schema: dict[str, Any], v: str) -> list[str]:
        if key == "type":
            names = [arg] if isinstance(arg, str) else list(arg)
            if any(n not in _TYPES for n in names):
                raise Unsupported(f"type {arg}")
            parts = []
            for n in names:
                if n in _EXACT_TYPES:
                    parts.append(f"type({v}) is {self.constant(_EXACT_TYPES[n])}")
                elif n == "integer":
                    parts.append(f"type({v}) is int")
                else:
                    parts.append(f"_num({v})")
            return ["(" + " or ".join(parts) + ")"]
        if key == "enum":
            return [f"any(_same({v}, o) for o in {self.constant(list(arg))})"]
        if key == "const":
            return [f"_same({v}, {self.constant(arg)})"]
        if key == "pattern":
            search = self.constant(re.compile(arg).search)
            return [f"(type({v}) is not str or {search}({v}) is not None)"]
        if key == "minLength":
            return [f"(type({v}) is not str or len({v}) >= {int(arg)})"]
        if key == "maxLength":
            return [f"(type({v}) is not str or len({v}) <= {int(arg)})"]
        if key == "minimum":
            return [f"(not _num({v}) or {v} >= {self.constant(arg)})"]
        if key == "maximum":
            return [f"(not _num({v}) or {v} <= {self.constant(arg)})"]
        if key == "minItems":
            return [f"(type({v}) is not list or len({v}) >= {int(arg)})"]
        if key == "items":
            item = self.function(arg)
            return [f"(type({v}) is not list or all({item}(i) for i in {v}))"]
        if key == "required":
            wanted = self.constant(list(arg))
            return [f"(type({v}) is not dict or all(n in {v} for n in {wanted}))"]
        if key == "allOf":
            return [t for part in arg for t in self.tests(part, v)]
        if key == "$ref":
            return [f"{self.ref(arg)}({v})"]
        if key == "propertyNames":
            name = self.function(arg)
            return [f"(type({v}) is not dict or all({name}(k) for k in {v}))"]
        if key == "properties":
            if "additionalProperties" in schema:
                return []  # checked together with additionalProperties
            return [self.properties(arg, True, v)]
        if key == "additionalProperties":
            return [self.properties(schema.get("properties", {}), arg, v)]
        raise Unsupported(key)

    def properties(self, props: dict[str, Any], extra: Any, v: str) -> str:
        known = {name: self.function(s) for name, s in props.items()}
        if extra is True:
            other = "None"
        elif extra is False:
            other = "False"
        else:
            other = self.function(extra)
        self.count += 1
        name = f"_props{self.count}"
        table = "{" + ", ".join(f"{k!r}: {f}" for k, f in known.items()) + "}"
        self.lines.append(f"{name}_table = {table}")
        self.lines.append(f"def {name}(v):")
        self.lines.append(f"    get = {name}_table.get")
        self.lines.append("    for key, value in v.items():")
        self.lines.append(f"        test = get(key, {other})")
        if other == "False":
            self.lines.append("        if test is False or not test(value): return False")
        elif other == "None":
            self.lines.append("        if test is not None and not test(value): return False")
        else:
            self.lines.append("        if not test(value): return False")
        self.lines.append("    return True")
        return f"(type({v}) is not dict or {name}({v}))"

    def build(self, schema: Any) -> Check:
        top = self.function(schema)
        namespace = dict(self.names)
        exec("\n".join(self.lines), namespace)  # source written above from the schema
        check: Check = namespace[top]
        return check


def _num(v: Any) -> bool:
    return (type(v) is int or type(v) is float) and v == v  # NaN compares as jsonschema's


def compile_schema(schema: dict[str, Any]) -> Check | None:
    """A yes/no checker for ``schema``, or None if it uses a keyword not known here."""
    try:
        return _Compiler(schema).build(schema)
    except (Unsupported, re.error, TypeError, ValueError, SyntaxError):
        return None


@cache
def checker(name: str) -> Check | None:
    """The compiled check for voicectl's schema ``name`` (read from the one schema dir)."""

    return compile_schema(schemas.load(name))


def surely_valid(name: str, data: Any) -> bool:
    """True when ``data`` certainly passes schema ``name``; False means: ask jsonschema."""
    check = checker(name)
    return check is not None and check(data)
