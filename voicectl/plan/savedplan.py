"""Saved plans: a plan written by ``plan --out`` together with everything it is bound to.

A saved plan records the state's lineage and serial, a digest of ``voicectl.yaml`` and
of every declaration file, the SHA-256 of every take it uses and, when it was planned
against the account, Coze's facts for every voice it touches. ``apply FILE`` carries it
out only when all of these are unchanged; :func:`differences` says what changed.

Paths in a saved plan are only ever compared with what the repository's own config
names; they are never opened, so a hand-edited plan cannot make voicectl read or upload
a file outside the repository.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from voicectl.errors import SavedPlanError
from voicectl.files import jsontext, schemas
from voicectl.model import Action, DesiredVoice, Plan, PlanOptions, RemoteVoice, State
from voicectl.planfile import change_from_json, plan_to_json, verdict_from_json

SAVED_PLAN_KIND = "voicectl-saved-plan"


@dataclass(frozen=True)
class Binding:
    """What a saved plan is bound to: change any of it and the plan is stale."""

    lineage: str | None  # None: planned before any state existed
    serial: int
    files: dict[str, str]  # repository-relative path -> sha256 of its bytes
    takes: dict[str, str]  # repository-relative audio path -> sha256
    remote: dict[str, dict[str, int]] | None = None  # voice_id -> update_time, budget


@dataclass(frozen=True)
class SavedPlan:
    plan: Plan
    binding: Binding
    options: PlanOptions = field(default_factory=PlanOptions)
    created_at: str = ""


def file_digests(root: Path, paths: Iterable[Path]) -> dict[str, str]:
    return {
        path.relative_to(root).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in paths
    }


def remote_facts(
    plan: Plan, remote: Mapping[str, RemoteVoice] | None
) -> dict[str, dict[str, int]] | None:
    """Coze's facts for every voice the plan touches (None when planned offline)."""
    if remote is None:
        return None
    facts = {}
    for change in plan.changes:
        voice = remote.get(change.voice_id or "")
        if change.action != Action.NOOP and voice is not None:
            facts[voice.voice_id] = {
                "update_time": voice.update_time,
                "available_training_times": voice.available_training_times,
            }
    return facts


def bind(
    plan: Plan,
    state: State | None,
    files: dict[str, str],
    desired: Iterable[DesiredVoice],
    remote: Mapping[str, RemoteVoice] | None,
) -> Binding:
    return Binding(
        lineage=None if state is None else state.lineage,
        serial=0 if state is None else state.serial,
        files=dict(sorted(files.items())),
        takes=dict(sorted((v.take.path, v.take.sha256) for v in desired)),
        remote=remote_facts(plan, remote),
    )


def to_json(saved: SavedPlan) -> dict[str, Any]:
    body = plan_to_json(saved.plan)
    o, b = saved.options, saved.binding
    body["saved"] = {
        "kind": SAVED_PLAN_KIND,
        "created_at": saved.created_at,
        "options": {
            "targets": sorted(o.targets),
            "excludes": sorted(o.excludes),
            "retrain": sorted(o.retrain),
            "replace": sorted(o.replace),
            "allow_protected": o.allow_protected,
            "allow_duplicate_name": o.allow_duplicate_name,
            "snapshots": o.snapshots,
        },
        "binding": {
            "lineage": b.lineage,
            "serial": b.serial,
            "files": b.files,
            "takes": b.takes,
            "remote": b.remote,
        },
    }
    return body


def dumps(saved: SavedPlan) -> bytes:
    return jsontext.dumps(to_json(saved))


MAX_PLAN_BYTES = 64 * 1024 * 1024  # /dev/zero is endless


def load(path: Path, display: str) -> SavedPlan:
    """Read and check a saved plan; any fault is one clear :class:`SavedPlanError`."""
    try:
        with open(path, "rb") as handle:  # a pipe too: `apply <(...)`
            raw = handle.read(MAX_PLAN_BYTES + 1)
    except FileNotFoundError:
        raise SavedPlanError(f"{display}: no such plan file") from None
    except IsADirectoryError:
        raise SavedPlanError(f"{display}: is a directory, not a plan file") from None
    except OSError as exc:
        raise SavedPlanError(f"{display}: cannot read the plan: {exc.strerror}") from None
    if len(raw) > MAX_PLAN_BYTES:
        raise SavedPlanError(
            f"{display}: larger than {MAX_PLAN_BYTES:,} bytes (a plan of 10,000 voices is "
            "about 15 MB): not a plan file"
        )
    try:
        data = jsontext.loads(raw.decode("utf-8"), strict=True)
    except UnicodeDecodeError:
        raise SavedPlanError(f"{display}: not a plan file (not UTF-8 text)") from None
    except json.JSONDecodeError as exc:
        raise SavedPlanError(
            f"{display}:{exc.lineno}:{exc.colno}: not a plan file (invalid JSON: {exc.msg})"
        ) from None
    errors = sorted(
        schemas.validator("plan").iter_errors(data), key=lambda e: [str(p) for p in e.path]
    )
    if errors:
        first = errors[0]
        where = ".".join(str(p) for p in first.absolute_path) or "(top level)"
        raise SavedPlanError(f"{display}: field {where}: {first.message}")
    saved = data.get("saved")
    if not isinstance(saved, dict):
        raise SavedPlanError(
            f"{display}: a plan printed by `plan --json` is not bound to its inputs; save one "
            "with `voicectl plan --out FILE`"
        )
    o, b = saved["options"], saved["binding"]
    return SavedPlan(
        plan=_plan(data),
        binding=Binding(
            lineage=b["lineage"],
            serial=b["serial"],
            files=b["files"],
            takes=b["takes"],
            remote=b["remote"],
        ),
        options=PlanOptions(
            targets=frozenset(o["targets"]),
            excludes=frozenset(o["excludes"]),
            retrain=frozenset(o["retrain"]),
            replace=frozenset(o["replace"]),
            allow_protected=o["allow_protected"],
            allow_duplicate_name=o.get("allow_duplicate_name", False),
            # A plan saved before snapshots showed no speech: none is made for it.
            snapshots=o.get("snapshots", False),
        ),
        created_at=saved["created_at"],
    )


def differences(
    saved: Binding,
    state: State | None,
    files: Mapping[str, str],
    takes: Mapping[str, str],
    remote: Mapping[str, RemoteVoice] | None,
) -> list[str]:
    """Everything the plan is bound to that is no longer so, in plain words."""
    return [
        *_state_differences(saved, state),
        *_file_differences(saved.files, files),
        *_take_differences(saved.takes, takes),
        *_remote_differences(saved, state, remote),
    ]


def _state_differences(saved: Binding, state: State | None) -> list[str]:
    if state is None or saved.lineage is None:
        if state is not None:
            return [f"a state was written since the plan was made (none -> serial {state.serial})"]
        if saved.lineage is not None:
            return ["the state the plan was made for is gone"]
    elif state.lineage != saved.lineage:
        return [
            f"the plan was made for another state (lineage {saved.lineage}; this "
            f"repository's state is {state.lineage})"
        ]
    elif state.serial != saved.serial:
        return [
            f"the state was written since the plan was made (serial {saved.serial} -> "
            f"{state.serial})"
        ]
    return []


def _file_differences(saved: Mapping[str, str], files: Mapping[str, str]) -> list[str]:
    found = []
    for path in sorted(set(saved) | set(files)):
        old, new = saved.get(path), files.get(path)
        if old is None:
            found.append(f"{path}: a declaration file added since the plan was made")
        elif new is None:
            found.append(f"{path}: removed since the plan was made")
        elif old != new:
            found.append(f"{path}: changed since the plan was made")
    return found


def _take_differences(saved: Mapping[str, str], takes: Mapping[str, str]) -> list[str]:
    found = []
    for path in sorted(set(saved) | set(takes)):
        old, new = saved.get(path), takes.get(path)
        if old is None:
            found.append(f"{path}: a take now used that the plan did not use")
        elif new is None:
            found.append(f"{path}: a take the plan used is no longer used")
        elif old != new:
            found.append(f"{path}: audio changed since the plan (sha256 {old[:12]} -> {new[:12]})")
    return found


def _remote_differences(
    saved: Binding, state: State | None, remote: Mapping[str, RemoteVoice] | None
) -> list[str]:
    """Coze's facts of the voices the plan touches, when it was made against the account."""
    if saved.remote is None:
        return []
    if remote is None:
        return ["the plan was made against Coze's account; applying it needs a token"]
    found = []
    for voice_id, facts in sorted(saved.remote.items()):
        now = remote.get(voice_id)
        if now is None:
            found.append(f"voice {voice_id} is no longer on Coze's voice list")
        elif (
            now.update_time != facts["update_time"]
            or now.available_training_times != facts["available_training_times"]
        ):
            found.append(
                f"voice {voice_id} changed on Coze since the plan (update_time "
                f"{facts['update_time']} -> {now.update_time}, clones left "
                f"{facts['available_training_times']} -> {now.available_training_times})"
                + (
                    ""  # the state moved on too: an apply, perhaps of this very plan
                    if state is not None and state.serial != saved.serial
                    else ": retrained outside voicectl?"
                )
            )
    return found


def _plan(data: dict[str, Any]) -> Plan:
    return Plan(
        tuple(change_from_json(c) for c in data["changes"]),
        tuple(data.get("warnings", ())),
        {sha: verdict_from_json(v) for sha, v in data.get("takes", {}).items()},
        data.get("speech_calls", 0),
    )
