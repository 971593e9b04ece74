"""The JSON Schemas: found in one place, compiled once.

The files live in ``schemas/`` at the project root (the single source of truth). A
wheel carries them inside the package as ``voicectl/schemas``; a source checkout or an
editable install reads them from the project root.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

NAMES = ("config", "voices", "state", "plan")


def schema_dir() -> Path:
    here = Path(__file__).resolve().parent
    for candidate in (here / "schemas", here.parent / "schemas"):
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
def validator(name: str) -> Draft202012Validator:
    """A validator compiled once per process for the named schema."""
    return Draft202012Validator(load(name))
