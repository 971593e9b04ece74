"""Reading JSON that anyone could have written: a state, a journal, a saved plan, a reply.

Python's parser accepts more than JSON, and fails on some of it in ways no caller
expects of bad input. Here each is a :class:`json.JSONDecodeError`, with the place it
was found, like any other malformed text:

- nesting a few thousand levels deep (the parser recurses once per level);
- an integer of more digits than Python converts (4,300);
- and, read ``strict`` (what voicectl wrote and reads back: states, saved plans,
  journals), what voicectl never writes: ``NaN``, ``Infinity`` and numbers too large
  for a float, a key given twice in one object (the reviewer's diff and what is used
  could differ), and a lone UTF-16 surrogate (``"\\ud800"``), which no UTF-8 text can
  hold and every later write would fail on.

And writing the one JSON text voicectl writes (states, saved plans, ``--json``):
:func:`dumps`, the bytes of ``json.dumps(value, indent=2, sort_keys=True,
ensure_ascii=False)`` and a newline (but for floats below 1e-4, see below), made by
orjson: Python's own encoder indents in pure Python (its C encoder does not indent).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import orjson

_LONG_NUMBER = re.compile(r"\d{4000,}")
_ESCAPED_SURROGATE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
_CONSTANT = re.compile(r"-?(?:NaN|Infinity)")


class _Refused(ValueError):
    """What a strict read refuses, and where to look for it in the text."""

    def __init__(self, message: str, find: re.Pattern[str] | None = None) -> None:
        super().__init__(message)
        self.message, self.find = message, find


def _constant(name: str) -> Any:
    raise _Refused(f"{name} is not JSON", _CONSTANT)


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _Refused(f"the number {text[:20]} is too large", re.compile(re.escape(text)))
    return value


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found = dict(pairs)
    if len(found) == len(pairs):
        return found
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            where = re.compile(re.escape(json.dumps(key, ensure_ascii=False)) + r"\s*:")
            raise _Refused(f"duplicate key {json.dumps(key)}", where)
        seen.add(key)
    return found


# What orjson refuses (an integer beyond 64 bits, a key that is not a string, a subclass
# of str, int, dict or list) is written by Python's encoder. Two differences are left, both
# for floats voicectl does not write (durations are rounded to the millisecond): a float
# below 1e-4 in magnitude has another, equally exact, notation (1e-05 as 0.00001, 8e-09 as
# 8e-9), and NaN and the infinities become null (no reader of voicectl's takes NaN; a
# take's duration is refused at its measure when it is not finite).
_ORJSON = (
    orjson.OPT_INDENT_2
    | orjson.OPT_SORT_KEYS
    | orjson.OPT_APPEND_NEWLINE
    | orjson.OPT_PASSTHROUGH_DATACLASS
    | orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_SUBCLASS
)


def dumps(value: Any) -> bytes:
    """``json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + "\\n"`` as UTF-8
    bytes, made fast (but for the floats said above); raises what that raises."""
    try:
        return orjson.dumps(value, option=_ORJSON)
    except TypeError:  # orjson.JSONEncodeError is one
        return (json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


def loads(data: str | bytes, *, strict: bool = False) -> Any:
    """``json.loads``, with what it would raise otherwise (or, ``strict``, accept) a
    :class:`json.JSONDecodeError` (see the module's docstring)."""
    hooks: dict[str, Any] = {}
    if strict:
        hooks = {"parse_constant": _constant, "parse_float": _float, "object_pairs_hook": _unique}
    try:
        value = json.loads(data, **hooks)
    except json.JSONDecodeError:
        raise
    except RecursionError:
        text = _text(data)
        depth = next((i for i, c in enumerate(text) if c not in "[{ \t\r\n"), len(text))
        raise json.JSONDecodeError("nested too deeply", text, depth) from None
    except _Refused as exc:
        raise _at(data, exc.message, exc.find) from None
    except ValueError as exc:  # Python's own limit on integer digits
        if "digits" not in str(exc):
            raise
        raise _at(data, "a number of too many digits", _LONG_NUMBER) from None
    if strict and _ESCAPED_SURROGATE.search(_text(data)):
        _whole_unicode(value, data)
    return value


def _text(data: str | bytes) -> str:
    return data.decode("utf-8", "replace") if isinstance(data, bytes) else data


def _at(data: str | bytes, message: str, find: re.Pattern[str] | None) -> json.JSONDecodeError:
    text = _text(data)
    found = find.search(text) if find is not None else None
    return json.JSONDecodeError(message, text, found.start() if found else 0)


def _whole_unicode(value: Any, data: str | bytes) -> None:
    """Refuse a string holding half of a UTF-16 pair (a lone surrogate)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                raise _at(
                    data, "a lone UTF-16 surrogate (not Unicode text)", _ESCAPED_SURROGATE
                ) from None
