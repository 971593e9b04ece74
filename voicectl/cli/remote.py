"""apply: carry out the plan on Coze, journaled, and record every outcome."""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from voicectl.cli.repo import (
    _check_policy,
    _plan_options,
    _planned,
    declaration_digests,
    plan_options,
)
from voicectl.cli.root import _start, cli, lock_timeout, lock_timeout_option
from voicectl.errors import EXIT_USER_ERROR, UsageError, VoicectlError

if TYPE_CHECKING:
    from voicectl.coze.client import CozeClient
    from voicectl.declare.config import Config
    from voicectl.model import Change, Plan, RemoteVoice, State
    from voicectl.plan.savedplan import SavedPlan


def _adoptions(values: Sequence[str]) -> dict[str, str]:
    found = {}
    for value in values:
        address, _, voice_id = value.partition("=")
        if not address or not voice_id.isdigit():
            raise UsageError(f"--adopt {value!r}: expected ADDRESS=VOICE_ID")
        found[address] = voice_id
    return found


def _inputs(cfg: Config, work: Sequence[Change]) -> list[str]:
    """What an apply is made from, relative to the repository: the configuration, every
    declaration file, and the takes it sends."""
    from voicectl.declare.config import CONFIG_FILE, declaration_files

    takes = {c.after["audio"]["path"] for c in work if c.after}
    return [CONFIG_FILE, *declaration_files(cfg), *sorted(takes)]


@cli.command()
@click.argument(
    "plan_file", metavar="[FILE]", required=False, type=click.Path(dir_okay=False, path_type=Path)
)
@click.option("--auto-approve", is_flag=True, help="Do not ask for confirmation.")
@click.option(
    "--parallelism",
    type=click.IntRange(1, 64),
    default=4,
    show_default=True,
    help="How many clones to run at once.",
)
@click.option(
    "--adopt",
    multiple=True,
    metavar="ADDRESS=VOICE_ID",
    help="Settle a lost clone reply by naming the voice it created.",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print a streaming event log, one JSON object per line (needs --auto-approve or FILE).",
)
@_plan_options
@lock_timeout_option
@click.pass_context
def apply(
    ctx: click.Context,
    /,
    plan_file: Path | None,
    auto_approve: bool,
    parallelism: int,
    adopt: tuple[str, ...],
    as_json: bool,
    **opts: Any,
) -> int:
    """Carry out the plan on Coze and record every outcome in the state.

    With FILE (saved by `voicectl plan --out FILE`), carry out exactly that plan, without
    asking, and refuse it if anything it is bound to has changed since.
    """
    from voicectl.apply import recovery
    from voicectl.apply.executor import Executor
    from voicectl.cli import account, waits
    from voicectl.cli.progress import Output, Progress
    from voicectl.declare import gitrepo
    from voicectl.plan import repository, savedplan
    from voicectl.state import lock, store
    from voicectl.state.journal import Journal, journal_path
    from voicectl.state.statefile import now

    start = _start(ctx)
    cfg = repository.open_config(start)
    home = store.for_repository(cfg)  # the state's home: a file today
    adoptions = _adoptions(adopt)
    saved = None
    if plan_file is not None:
        flags = {"targets": "--target", "excludes": "--exclude"}
        given = sorted(flags.get(k, "--" + k.replace("_", "-")) for k, v in opts.items() if v)
        if given:
            raise UsageError(
                f"{', '.join(given)}: a saved plan carries its own options; make a new one "
                "with `voicectl plan --out FILE`"
            )
        saved = savedplan.load(start / plan_file, str(plan_file))
    if as_json and not (auto_approve or saved):
        raise UsageError("--json cannot ask for confirmation: pass --auto-approve or a FILE")
    client = account.client_for(cfg, "apply")
    settle, in_hands = waits.settle(), waits.in_hands()  # read before anything is done
    out = Output(as_json)
    with lock.locked(cfg.state_path, "voicectl apply", now(), _echo_err, lock_timeout()):
        current, existed = repository.load_state(cfg)
        before = current
        current = recovery.recover(
            cfg.state_path,
            current,
            lambda log: Executor(
                client, cfg.root, log, 1, Progress(0), settle=settle, in_hands=in_hands
            ),
            adoptions,
            _echo_err,
            home,
        )
        listed_at = time.time()  # the clones' witness: the account from here on
        remote = account.remote_voices(client, current)
        options = saved.options if saved is not None else plan_options(opts)
        if saved is not None:
            try:
                result = _verified(cfg, current if existed else None, saved, remote, str(plan_file))
            except VoicectlError as exc:
                if current == before:
                    raise
                # The interrupted apply's own clones, just folded, are what changed.
                raise VoicectlError(
                    f"{exc.message}\nThose changes are the interrupted apply's clones, "
                    "recorded just now (see above): what is left of the plan needs a new "
                    "one, `voicectl plan --out FILE`, reviewed like the first"
                ) from None
        else:
            result, _ = _planned(cfg, current, options, remote, quiet=as_json)
        out.plan(result)
        _check_policy(cfg, result, current, remote)
        _check_account_facts(result, remote, current, options.allow_duplicate_name)
        work = result.actionable
        blocked = [c for c in result.changes if c.action == "blocked"]
        if not work:
            out.summary([], [], blocked, current)
            return EXIT_USER_ERROR if blocked else 0
        if not (auto_approve or saved):
            if not sys.stdin.isatty():
                raise UsageError(
                    "no terminal to confirm on: review the plan and pass --auto-approve "
                    "(or save it with `voicectl plan --out FILE` and run `voicectl apply FILE`)"
                )
            # Money is spent on the answer: a stray "y" is not enough (as in Terraform).
            spends = result.cost.one_time_cny > 0 or result.clones_spent > 0
            asked = (
                "Carry out this plan? It spends what it shows. Only 'yes' is accepted"
                if spends
                else "Carry out this plan? Only 'yes' is accepted"
            )
            answer = click.prompt(asked, default="", show_default=False).strip()
            if answer != "yes":
                typed = f" (you typed {answer!r}; only 'yes' carries it out)" if answer else ""
                click.echo(f"Nothing was changed{typed}.")
                return EXIT_USER_ERROR
            # The clones' witness is the account once the person has decided, not from
            # before they read the plan (see voicectl.apply.reconcile.unproven).
            listed_at = time.time()
            remote = account.remote_voices(client, current)
        if not existed:  # the journal must name a lineage that is on disk
            current = home.write(current, base=None)
        progress = out.progress(len(work))
        log = Journal.begin(
            journal_path(cfg.state_path),
            current,
            now(),
            gitrepo.head(cfg.root),
            account=client.account_record(),
            uncommitted=gitrepo.uncommitted(cfg.root, _inputs(cfg, work)),
        )
        outcome = None
        interrupted = False
        try:
            executor = Executor(
                client, cfg.root, log, parallelism, progress, settle=settle, in_hands=in_hands
            )
            outcome = executor.run(work, current.voice_ids(), remote, listed_at)
        except KeyboardInterrupt:
            interrupted = True
            raise
        finally:
            progress.close()
            try:
                log.keep_in_place()  # removed meanwhile: put back, for the fold to read
            finally:
                log.close()
            finish = None
            if outcome is not None:  # Coze's facts and the takes' blob ids, in the one write
                done = outcome.done

                def finish(folded: State) -> State:
                    return repository.with_blobs(cfg, _record_remote(client, cfg, folded, done))

            final, folded = recovery.fold_or_keep(cfg.state_path, current, _echo_err, finish, home)
            if interrupted:  # what ^C left, before click says "Aborted."
                said = recovery.recorded(current, final)
                _echo_err(
                    f"Interrupted: {'in the state now: ' + said if said else 'no clone ended'}"
                    f"{'' if folded else '; the journal keeps the clones in flight'}; the "
                    "changes not started were not sent. `voicectl apply` carries on."
                )
    assert outcome is not None  # else the exception went on
    out.summary(outcome.done, outcome.failed, blocked, final)
    return EXIT_USER_ERROR if outcome.failed or blocked or not folded else 0


def _check_account_facts(
    result: Plan, remote: Mapping[str, RemoteVoice], current: State, allow_duplicate_name: bool
) -> None:
    """What a plan saved offline could not know, checked against the account before any
    clone: a retrain of a voice that is not on Coze's list would fail (4200), and a
    create named like a voice Coze has and the state does not would pay for a voice that
    `voicectl import` adopts free."""
    problems = []
    missing = sorted(
        f"{c.address} (voice {c.voice_id})"
        for c in result.actionable
        if c.action == "retrain" and c.voice_id not in remote
    )
    if missing:
        problems.append(
            f"not on Coze's voice list, so they cannot be retrained: {', '.join(missing)} "
            "(`--replace ADDRESS` makes a new voice id, `voicectl state rm ADDRESS` forgets it)"
        )
    from voicectl.plan.planner import unknown_by_name

    unknown = unknown_by_name(current, remote)
    named = sorted(
        f"{c.address} (Coze has {', '.join(unknown[name])})"
        for c in result.actionable
        if c.action == "create"
        and (name := str((c.after or {}).get("name"))) in unknown
        and not allow_duplicate_name
    )
    if named:
        problems.append(
            "a voice of that name is on Coze and not in the state: "
            f"{', '.join(named)} (`voicectl import ADDRESS VOICE_ID` adopts it free; "
            "`--allow-duplicate-name` clones another)"
        )
    if problems:
        raise VoicectlError(
            "the plan does not fit the account, nothing was cloned: "
            + "; ".join(problems)
            + ". A new `voicectl plan` shows each"
        )


def _verified(
    cfg: Config,
    current: State | None,
    saved: SavedPlan,
    remote: Mapping[str, RemoteVoice],
    display: str,
) -> Plan:
    """The saved plan, if everything it is bound to is unchanged; else a clear refusal."""
    from voicectl import planfile
    from voicectl.declare.hashing import sha256_file
    from voicectl.plan import repository, savedplan
    from voicectl.state.statefile import new_state

    snapshot = repository.read_valid(cfg)
    bound_remote = remote if saved.binding.remote is not None else None
    takes = {v.take.path: v.take.sha256 for v in snapshot.desired}
    found = savedplan.differences(
        saved.binding, current, declaration_digests(cfg, snapshot.files), takes, bound_remote
    )
    uploads = {c.address for c in saved.plan.actionable if c.spends_clone}
    for voice in snapshot.desired:  # what will be uploaded is hashed afresh, not from cache
        if voice.decl.address in uploads and (
            sha256_file(cfg.root / voice.take.path) != voice.take.sha256
        ):
            found.append(f"{voice.take.path}: audio changed while planning")
    if not found:
        base = current if current is not None else new_state()
        fresh, _ = _planned(cfg, base, saved.options, bound_remote, quiet=True)
        now_json = [planfile.change_to_json(c) for c in fresh.changes]
        if now_json != [planfile.change_to_json(c) for c in saved.plan.changes]:
            found.append(
                "its changes differ from what voicectl plans now from the same inputs "
                "(edited by hand, or made by another voicectl version)"
            )
    if found:
        raise savedplan.SavedPlanError(
            f"{display}: the saved plan is stale, nothing was applied:\n  - "
            + "\n  - ".join(found)
            + "\nMake and review a new one: `voicectl plan --out FILE`."
        )
    return saved.plan


def _record_remote(
    client: CozeClient, cfg: Config, final: State, done: Sequence[tuple[Change, str | None]]
) -> State:
    """Record Coze's facts for the state's voices after an apply: drift's baseline.

    A voice this apply created that Coze lists under another name than it was sent with
    (replies swapped between two clones by something in between) is said so, and its
    facts are not recorded, so that `voicectl drift` keeps showing it. Best effort, before
    the state is written: if the read fails, ``voicectl refresh`` records them later.
    """
    from dataclasses import replace

    from voicectl.cli import account
    from voicectl.model import NEW_VOICE_ACTIONS
    from voicectl.plan.planner import unproven_note
    from voicectl.state import statefile as state
    from voicectl.state import transition

    if not done:
        return final
    try:
        remote = account.remote_voices(client, final)
    except VoicectlError as exc:
        _echo_err(
            f"could not read Coze's voices after the apply ({exc.message}); run "
            "`voicectl refresh` later"
        )
        return final
    for change, voice_id in done:
        name = (change.after or {}).get("name")
        listed = remote.get(voice_id or "")
        if change.spends_clone and listed is None:
            _echo_err(
                f"{change.address}: voice {voice_id}, as Coze's reply named it, is not on "
                "Coze's voice list (yet?): if `voicectl plan` says it is missing on Coze, "
                "the reply named another voice than the one made, and the plan says what to do"
            )
        if change.spends_clone and listed is not None and listed.name != name:
            remote = {k: v for k, v in remote.items() if k != voice_id}
            record = final.voices.get(change.address)
            if change.action not in NEW_VOICE_ACTIONS or record is None:
                continue
            # Not this clone's voice, most likely (a reply swapped, or rewritten): it may be
            # someone else's, so it is not relied on until a person decides.
            why = (
                f"Coze's reply to the {change.action} named voice {voice_id}, which Coze "
                f"lists as {listed.name!r}, not as it was sent ({name!r}): the reply may "
                "belong to another clone"
            )
            final = replace(
                final, voices={**final.voices, change.address: replace(record, unproven=why)}
            )
            _echo_err(f"{change.address}: {unproven_note(change.address, voice_id, why)}")
    # Only this apply's clones: a voice someone else changed keeps its old facts, so that
    # drift goes on showing it until `voicectl refresh` acknowledges it.
    ours = {voice_id for change, voice_id in done if change.spends_clone}
    return transition.refreshed(
        final, {k: v for k, v in remote.items() if k in ours}, state.now(), trained_here=True
    )


def _echo_err(message: str) -> None:
    click.echo(f"notice: {message}", err=True)
