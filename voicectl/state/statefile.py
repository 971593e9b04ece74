"""The state file: what exists on Coze because of this repository.

One JSON document with a format version, a lineage (fixed at creation) and a serial
(bumped on every write), as Terraform does, so an older state can never silently
replace a newer one. Written atomically with sorted keys and a 2-space indent so its
``git diff`` reads well in a pull request. Read with validation: a corrupt or
newer-format file is an error and is never overwritten.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import uuid
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from voicectl import __version__
from voicectl.errors import StateError
from voicectl.files import jsontext, safefile, schemacheck, schemas
from voicectl.files.atomic import write_atomic
from voicectl.files.cache import machine_key, write_cache
from voicectl.files.yamlload import json_position
from voicectl.model import (
    ADDRESS_PATTERN,
    CLONE_LIMIT,
    RemoteFacts,
    State,
    TakeEntry,
    TakeRef,
    VoiceRecord,
)

FORMAT_VERSION = 2
# 2 (voicectl 0.2.0) added what 1 lacks: unproven voices, uncommitted clones. A state of
# format 1 reads as it is; voicectl 0.1.0 tells a format-2 state's reader to upgrade.


def now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def new_state() -> State:
    return State(lineage=str(uuid.uuid4()), serial=0)


def load(path: Path, display: str, checked: Path | None = None) -> State | None:
    """The state at ``path``, or None when there is none yet.

    ``checked`` names a local cache file recording the digest of the last state found
    valid against the schema (with voicectl's version and the schema's digest): the same
    bytes are not checked again. A cache is a hint; a wrong one only costs the check.
    """
    try:
        raw = safefile.read_bytes(path)  # never through a link a pull request planted
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StateError(f"{display}: cannot read the state: {exc.strerror}") from None
    return checked_parse(raw, display, checked)


def checked_parse(
    raw: bytes, display: str, checked: Path | None, restore: str | None = None
) -> State:
    """:func:`parse`, but bytes this machine found valid before (``checked``, see
    :func:`load`) are not checked again."""
    token = None if checked is None else _validity_token(raw)
    if checked is None or token is None:
        return parse(raw, display, restore)
    try:
        known = safefile.read_bytes(checked) == token
    except (OSError, StateError):
        known = False
    if known:
        data = jsontext.loads(raw)
        if isinstance(data, dict):
            return from_json(data)
    result = parse(raw, display, restore)
    with contextlib.suppress(OSError):
        write_cache(checked, token)
    return result


def _validity_token(raw: bytes) -> bytes | None:
    """What the cache records of a state this machine found valid: keyed with a secret
    of this machine (outside the repository), so that a cache file a pull request adds
    cannot vouch for a state nobody checked. None: no key, no cache."""

    key = machine_key()
    if key is None:
        return None
    schema = schemas.digest("state")
    digest = hashlib.sha256(key + raw).hexdigest()
    body = {"state": digest, "schema": schema, "voicectl": __version__}
    return json.dumps(body, sort_keys=True).encode()


def parse(raw: bytes, display: str, restore: str | None = None) -> State:
    """The state in ``raw`` (from ``display``), checked; a StateError says what is wrong
    and where, and ``restore`` how to put a good one back (for a file: from git)."""
    it = "the state file" if restore is None else "the state"
    restore = restore or f"restore it from git, e.g. `git checkout -- {display}`"
    keep = f"; it was left unchanged ({restore})"
    if not raw.strip():
        raise StateError(f"{display}: {it} is empty{keep}")
    try:
        data = jsontext.loads(raw.decode("utf-8"), strict=True)
    except UnicodeDecodeError:
        raise StateError(f"{display}: {it} is not UTF-8 text{keep}") from None
    except json.JSONDecodeError as exc:
        raise StateError(
            f"{display}:{exc.lineno}:{exc.colno}: {it} is not valid JSON ({exc.msg}){keep}"
        ) from None
    if not isinstance(data, dict):
        raise StateError(f"{display}: {it} must hold a JSON object{keep}")
    version = data.get("format_version")
    if isinstance(version, int) and not isinstance(version, bool) and version > FORMAT_VERSION:
        at = _at(raw, display, ["format_version"])
        raise StateError(
            f"{at}: written by a newer voicectl (state format {version}; this "
            f"voicectl reads format {FORMAT_VERSION}); upgrade voicectl"
        )
    if schemacheck.surely_valid("state", data):
        return _addresses_checked(from_json(data), raw, display, keep)
    errors = sorted(
        schemas.validator("state").iter_errors(data),
        key=lambda e: [str(p) for p in e.absolute_path],
    )
    if errors:
        first = errors[0]
        where = ".".join(str(p) for p in first.absolute_path) or "(top level)"
        more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
        at = _at(raw, display, list(first.absolute_path))
        raise StateError(f"{at}: field {where}: {first.message}{more}{keep}")
    return _addresses_checked(from_json(data), raw, display, keep)


_ADDRESS = re.compile(ADDRESS_PATTERN)


def _addresses_checked(state: State, raw: bytes, display: str, keep: str) -> State:
    """The state, once every address in it is one (whole: a JSON Schema pattern's ``$``
    lets a trailing newline by in Python): a state is a file a pull request can edit,
    and its addresses reach terminals and comments."""
    found = [
        *state.voices,
        *(r.address for r in state.orphans),
        *(e.address for entries in state.takes.values() for e in entries),
    ]
    for address in found:
        if not _ADDRESS.fullmatch(address):
            raise StateError(
                f"{display}: {address!r} is not an address (lower-case letters, digits, "
                f"'_', '.', '-'){keep}"
            )
    return state


def _at(raw: bytes, display: str, path: list[str | int]) -> str:
    """``display:line:column`` of the value at ``path`` in the JSON text, or ``display``."""

    found = json_position(raw, path)
    return display if found is None else f"{display}:{found[0]}:{found[1]}"


def from_json(data: dict[str, Any]) -> State:
    voices = {address: _record(address, body) for address, body in data["voices"].items()}
    orphans = tuple(_record(body["address"], body) for body in data["orphans"])
    takes = {
        sha: tuple(
            TakeEntry(
                e["voice_id"],
                e["address"],
                e["clone"],
                e["applied_at"],
                e.get("logid", ""),
                e.get("commit", ""),
                e.get("uncommitted") is True,
            )
            for e in entries
        )
        for sha, entries in data["takes"].items()
    }
    return State(
        lineage=data["lineage"], serial=data["serial"], voices=voices, orphans=orphans, takes=takes
    )


def _record(address: str, body: dict[str, Any]) -> VoiceRecord:
    audio = body["audio"]
    return VoiceRecord(
        address=address,
        voice_id=body["voice_id"],
        space=body.get("space"),
        name=body["name"],
        language=body["language"],
        text=body["text"],
        preview_text=body.get("preview_text"),
        take=TakeRef(
            audio["sha256"],
            audio["path"],
            audio["format"],
            audio["size"],
            float(audio["duration"]),
            audio.get("git_blob", ""),
        ),
        clones_used=body["clones_used"],
        protect=body["protect"],
        created_at=body["created_at"],
        updated_at=body["updated_at"],
        orphaned_at=body.get("orphaned_at"),
        verified=audio.get("verified", True),
        remote=_facts(body.get("remote")),
        unproven=body.get("unproven"),
    )


def _facts(body: dict[str, Any] | None) -> RemoteFacts | None:
    if body is None:
        return None
    return RemoteFacts(
        body["name"],
        body["available_training_times"],
        body["update_time"],
        body["read_at"],
        body.get("model_type", ""),
    )


def record_json(record: VoiceRecord, *, with_address: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {
        "voice_id": record.voice_id,
        "space": record.space,
        "name": record.name,
        "language": record.language,
        "text": record.text,
        "preview_text": record.preview_text,
        "audio": {
            "sha256": record.take.sha256,
            "path": record.take.path,
            "format": record.take.format,
            "size": record.take.size,
            "duration": record.take.duration,
        },
        "clones_used": record.clones_used,
        "clone_limit": CLONE_LIMIT,
        "protect": record.protect,
        "created_at": record.created_at,
        "updated_at": record.updated_at,
    }
    if with_address:
        body["address"] = record.address
    if record.orphaned_at is not None:
        body["orphaned_at"] = record.orphaned_at
    if not record.verified:
        body["audio"]["verified"] = False
    if record.take.git_blob:
        body["audio"]["git_blob"] = record.take.git_blob
    if record.unproven is not None:
        body["unproven"] = record.unproven
    if record.remote is not None:
        body["remote"] = {
            "name": record.remote.name,
            "available_training_times": record.remote.available_training_times,
            "update_time": record.remote.update_time,
            "read_at": record.remote.read_at,
            **({"model_type": record.remote.model_type} if record.remote.model_type else {}),
        }
    return body


def entry_json(e: TakeEntry) -> dict[str, Any]:
    body: dict[str, Any] = {
        "voice_id": e.voice_id,
        "address": e.address,
        "clone": e.clone,
        "applied_at": e.applied_at,
    }
    if e.logid:
        body["logid"] = e.logid
    if e.commit:
        body["commit"] = e.commit
    if e.uncommitted:
        body["uncommitted"] = True
    return body


def to_json(state: State) -> dict[str, Any]:
    return {
        "format_version": FORMAT_VERSION,
        "lineage": state.lineage,
        "serial": state.serial,
        "voices": {a: record_json(r) for a, r in state.voices.items()},
        "orphans": [
            record_json(r, with_address=True)
            for r in sorted(state.orphans, key=lambda r: (r.orphaned_at or "", r.voice_id))
        ],
        "takes": {sha: [entry_json(e) for e in entries] for sha, entries in state.takes.items()},
    }


def dumps(state: State) -> bytes:
    return encoded(to_json(state))


def encoded(data: dict[str, Any]) -> bytes:
    return jsontext.dumps(data)


def save(path: Path, state: State) -> State:
    """Write ``state`` with its serial bumped; returns what was written, as a read gives it
    back (see :func:`as_read`), so that it can be compared with one read."""
    written = as_read(replace(state, serial=state.serial + 1))
    write_atomic(path, dumps(written))
    return written


def as_read(state: State) -> State:
    """``from_json(to_json(state))``, made directly (a tenth of the time): orphans in the
    file's order, each voice at its own address, durations as floats; the rest of a
    record reads back as it was written (a property test holds the two equal)."""
    voices = state.voices
    if any(r.address != a or type(r.take.duration) is not float for a, r in voices.items()):
        voices = {a: _as_read(r, a) for a, r in voices.items()}
    orphans = tuple(
        _as_read(r, r.address)
        for r in sorted(state.orphans, key=lambda r: (r.orphaned_at or "", r.voice_id))
    )
    takes = state.takes
    if any(type(e.uncommitted) is not bool for entries in takes.values() for e in entries):
        takes = {
            sha: tuple(replace(e, uncommitted=e.uncommitted is True) for e in entries)
            for sha, entries in takes.items()
        }
    return replace(state, voices=voices, orphans=orphans, takes=takes)


def _as_read(record: VoiceRecord, address: str) -> VoiceRecord:
    if record.address == address and type(record.take.duration) is float:
        return record
    take = replace(record.take, duration=float(record.take.duration))
    return replace(record, address=address, take=take)
