"""Reading JSON that anyone could have written: a state, a journal, a saved plan, a reply.

Python's parser recurses once per level of nesting, so a few thousand ``[`` raise
RecursionError, which no caller expects of bad input. Here that is a decode error like any
other malformed text, with the place it was found.
"""

from __future__ import annotations

import json
from typing import Any


def loads(data: str | bytes) -> Any:
    """``json.loads``, with nesting too deep for the parser a :class:`json.JSONDecodeError`."""
    try:
        return json.loads(data)
    except RecursionError:
        text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
        depth = next((i for i, c in enumerate(text) if c not in "[{ \t\r\n"), len(text))
        raise json.JSONDecodeError("nested too deeply", text, depth) from None
