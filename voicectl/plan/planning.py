"""A plan made from a repository: read it, plan it against a state and (optionally) the
account's voices, and hold it to voicectl.yaml's policy. What plan and apply share."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Protocol

from voicectl.declare import config
from voicectl.errors import PolicyError, UsageError, ValidationFailed, VoicectlError
from voicectl.model import SPEECHES_PER_RETRAIN, Action, Plan, PlanOptions, RemoteVoice, State
from voicectl.plan import drift, planner, repository, savedplan, takequality


class VoiceLister(Protocol):
    """What reading the account needs of Coze: its voice list, and where it was read."""

    @property
    def base_url(self) -> str: ...

    def voices(self, *, expected: int = 0) -> Iterable[RemoteVoice]: ...


def planned(
    cfg: config.Config,
    current: State,
    options: PlanOptions,
    remote: Mapping[str, RemoteVoice] | None = None,
) -> tuple[Plan, repository.Snapshot]:
    """The repository read and planned against ``current`` (and Coze's voices, when
    read); the snapshot carries the warnings, for the caller to show."""
    snapshot = repository.read_valid(cfg, current)
    unknown = planner.unknown_addresses(options, snapshot.desired, current)
    if unknown:
        raise UsageError(
            f"unknown address(es): {', '.join(unknown)} (neither declared nor in the state)"
        )
    result = planner.plan(snapshot.desired, current, remote, options)
    cloning = {c.address for c in result.changes if c.spends_clone}
    verdicts, problems = takequality.judged(cfg, snapshot.desired, cloning, snapshot.warnings)
    if problems:
        snapshot = replace(snapshot, problems=sorted([*snapshot.problems, *problems]))
        if snapshot.errors:
            raise ValidationFailed(snapshot.problems)
    retrains = sum(1 for c in result.changes if c.action == Action.RETRAIN)
    speech = SPEECHES_PER_RETRAIN * retrains if options.snapshots else 0
    return replace(result, takes=verdicts, speech_calls=speech), snapshot


def check_policy(
    cfg: config.Config, result: Plan, current: State, remote: Mapping[str, RemoteVoice] | None
) -> None:
    """Fails when the plan exceeds voicectl.yaml's policy; the account's cloned voices are
    counted from Coze's list when it was read, else from the state."""
    on_account = len(remote) if remote is not None else len(current.voice_ids())
    violations = planner.policy_violations(
        result, cfg.max_new_voices, cfg.max_one_time_cny, cfg.max_voices, on_account=on_account
    )
    if violations:
        raise PolicyError(
            "the plan exceeds the repository policy (voicectl.yaml):\n  " + "\n  ".join(violations)
        )


def declaration_digests(cfg: config.Config, files: list[str]) -> dict[str, str]:
    """sha256 of voicectl.yaml (as it was read) and of the declaration ``files`` (a valid
    snapshot's), by repository path."""
    digests = savedplan.file_digests(cfg.root, [cfg.root / f for f in files])
    return {config.CONFIG_FILE: cfg.digest, **digests}


def remote_voices(client: VoiceLister, state: State | None = None) -> dict[str, RemoteVoice]:
    """Every custom voice the token can see, by voice id, from a complete listing.

    With ``state``, its size lets the list ask for that many pages at once, and a listing
    that holds none of its voice ids is refused: that is another account (a wrong token,
    the other region, another team), where an apply would clone every voice anew.
    """
    known = state.voice_ids() if state is not None else set()
    remote = {voice.voice_id: voice for voice in client.voices(expected=len(known))}
    reason = drift.wrong_account(known, remote.keys(), client.base_url)
    if reason is not None:
        raise VoicectlError(f"{reason}. Nothing was cloned")
    return remote


__all__ = ["VoiceLister", "check_policy", "declaration_digests", "planned", "remote_voices"]
