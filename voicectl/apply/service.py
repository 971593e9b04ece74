"""An apply, start to end: recover, plan (or verify a saved plan), carry it out, record.

The command line only parses options and shows what a :class:`Reporter` is told; this
module decides. Under the state's lock: an interrupted apply is recovered first, the
account is read, the plan made (or the saved one verified against everything it is
bound to) and checked against the policy and the account, then confirmed. Every clone
is journaled the moment its outcome is known, and the state is written once, at the
end, with Coze's facts and the takes' blob ids in the same write.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

from voicectl.apply import checks, recovery, snapshots
from voicectl.apply.events import Event, Outcome
from voicectl.apply.executor import Coze, Executor
from voicectl.coze.replies import Seal
from voicectl.coze.speech import Speaker
from voicectl.declare import config, gitrepo
from voicectl.declare.declarations import declaration_files
from voicectl.errors import Problem, UsageError, VoicectlError
from voicectl.model import NEW_VOICE_ACTIONS, Action, Change, Plan, PlanOptions, RemoteVoice, State
from voicectl.plan import changeparts, planning, repository, savedplan
from voicectl.state import pending, store, transition
from voicectl.state.journal import Journal, journal_path
from voicectl.state.statefile import new_state, now


class ProgressSink(Protocol):
    """Where the executor's events go while an apply runs."""

    def __call__(self, event: Event) -> None: ...

    def close(self) -> None: ...


class Reporter(Protocol):
    """What an apply tells the person running it, and asks them."""

    def notice(self, message: str) -> None: ...

    def warnings(self, problems: list[Problem]) -> tuple[str, ...]:
        """Show the repository's warnings; their lines, for the plan."""
        ...

    def plan(self, result: Plan) -> None: ...

    def confirm(self, result: Plan) -> bool:
        """Whether to carry out ``result``; False: nothing is done."""
        ...

    def progress(self, total: int) -> ProgressSink: ...


class Account(Coze, Speaker, Protocol):
    """The Coze client an apply needs: the executor's, whose account it is, and speech
    (to keep a retrained voice's sound)."""

    def account_record(self) -> dict[str, str]: ...

    def same_account(self, record: Mapping[str, object]) -> bool: ...

    def seal(self) -> Seal: ...


@dataclass(frozen=True)
class Request:
    """One apply: a saved plan to carry out exactly, or options to plan with."""

    options: PlanOptions = field(default_factory=PlanOptions)
    saved: savedplan.SavedPlan | None = None
    saved_display: str = ""
    confirmed: bool = False  # --auto-approve, or a saved plan: do not ask
    parallelism: int = 4
    adopt: Mapping[str, str] = field(default_factory=dict)
    settle: Sequence[float] = ()
    in_hands: float = 0.0
    lock_timeout: float = 0.0
    snapshots: bool = True  # False: no speech call, whatever the plan allows


@dataclass
class Applied:
    """How an apply ended. ``outcome`` is None when nothing was carried out (nothing to
    do, or not confirmed)."""

    plan: Plan
    blocked: list[Change]
    final: State
    outcome: Outcome | None = None
    folded: bool = True
    declined: bool = False
    stopped: VoicectlError | None = None  # why the apply stopped early: said after all
    speech_calls: int = 0  # billed speeches made to keep retrained voices' sound

    @property
    def ok(self) -> bool:
        failed = self.outcome is not None and self.outcome.failed
        bad = failed or self.blocked or self.declined or self.stopped
        return not (bad or not self.folded)


def run(cfg: config.Config, client: Account, request: Request, reporter: Reporter) -> Applied:
    """Carry out one apply under the state's lock; see the module's docstring."""
    home = repository.home(cfg)
    with home.locked("voicectl apply", reporter.notice, request.lock_timeout):
        stored = home.read()
        current = stored if stored is not None else new_state()
        recovery.bring(home, journal_path(cfg.state_path), reporter.notice)  # another runner's
        _check_adoptions(cfg, current, request.adopt)
        executor_for = _executors(cfg, client, request)
        events = reporter.progress(0)  # what recovery settles, said as it is
        try:
            recovered = recovery.recover(
                cfg.state_path, current, executor_for(1, events), dict(request.adopt),
                reporter.notice, home, stored=stored is not None, ours=client.seal(),
            )  # fmt: skip
        finally:
            events.close()
        if recovered is not current:
            stored = recovered  # folded: written
        listed_at = time.time()  # the clones' witness: the account from here on
        remote = planning.remote_voices(client, recovered)
        result = _plan(cfg, recovered, stored, current, remote, request, reporter)
        planning.check_policy(cfg, result, recovered, remote)
        checks.fits_account(result, remote, recovered, request.options.allow_duplicate_name)
        blocked = [c for c in result.changes if c.action == Action.BLOCKED]
        work = result.actionable
        if not work:
            return Applied(result, blocked, recovered)
        if not request.confirmed:
            if not reporter.confirm(result):
                return Applied(result, blocked, recovered, declined=True)
            # The clones' witness is the account once the person has decided, not from
            # before they read the plan (see voicectl.apply.reconcile.unproven); and what
            # was checked before they read it is checked again on it: a teammate's apply
            # or a `git pull` meanwhile must not be paid for twice.
            listed_at = time.time()
            remote = planning.remote_voices(client, recovered)
            _unchanged_since_shown(home, stored)
            planning.check_policy(cfg, result, recovered, remote)
            checks.fits_account(result, remote, recovered, request.options.allow_duplicate_name)
        # At most the speech the plan showed: two a retrain, the first ones if it showed fewer.
        allowed = result.speech_calls if request.snapshots else 0
        retrains = snapshots.planned(work, recovered, remote)[: allowed // 2]
        speech = snapshots.before(
            cfg.root, client, retrains, remote, reporter.notice, request.parallelism
        )
        outcome, final, folded, stopped = _execute(
            cfg, client, home, recovered, stored, work, remote, listed_at,
            executor_for, request.parallelism, reporter,
        )  # fmt: skip
        speech += snapshots.after(
            cfg.root, client, retrains, outcome.done, final, reporter.notice, request.parallelism
        )
        return Applied(
            result, blocked, final, outcome, folded, stopped=stopped, speech_calls=speech
        )


def _check_adoptions(cfg: config.Config, current: State, adopt: Mapping[str, str]) -> None:
    """``--adopt`` names the voice of a clone of unknown outcome: one that is not such a
    clone is a mistake said at once, not an option silently ignored."""
    if not adopt:  # the common case: the journal is not read for it
        return
    stray = sorted(set(adopt) - pending.unknown(cfg.state_path, current))
    if stray:
        raise UsageError(
            f"--adopt {', '.join(stray)}: no interrupted apply left a clone of unknown "
            "outcome there, so there is nothing to settle (`voicectl import ADDRESS "
            "VOICE_ID` takes in an existing voice)"
        )


def _unchanged_since_shown(home: store.StateStore, stored: State | None) -> None:
    """The state is still the one the plan was made from, once the person has said yes."""
    now_stored = home.read()
    if now_stored != stored:
        raise VoicectlError(
            "the state changed while the plan waited for an answer (another apply, or a "
            "`git pull`?), so nothing was cloned: run `voicectl apply` again and review "
            "the plan made from it"
        )


def _plan(
    cfg: config.Config,
    current: State,
    stored: State | None,
    before: State,
    remote: Mapping[str, RemoteVoice],
    request: Request,
    reporter: Reporter,
) -> Plan:
    """The plan to carry out, shown: the saved one verified, or one made now."""
    if request.saved is not None:
        try:
            result = checks.verified(cfg, stored, request.saved, remote, request.saved_display)
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
        result, snapshot = planning.planned(cfg, current, request.options, remote)
        result = replace(result, warnings=reporter.warnings(snapshot.warnings))
    reporter.plan(result)
    return result


def _executors(
    cfg: config.Config, client: Account, request: Request
) -> Callable[[int, Callable[[Event], None]], Callable[[Journal], Executor]]:
    def executor_for(
        parallelism: int, on_event: Callable[[Event], None]
    ) -> Callable[[Journal], Executor]:
        def make(log: Journal) -> Executor:
            return Executor(
                client, cfg.root, log, parallelism, on_event,
                settle=request.settle, in_hands=request.in_hands,
            )  # fmt: skip

        return make

    return executor_for


def _begin(
    cfg: config.Config,
    client: Account,
    home: store.StateStore,
    current: State,
    work: Sequence[Change],
) -> Journal:
    """The journal of this apply: sealed with the client's token, kept in the store too
    where it keeps journals."""
    seal = client.seal()
    account = seal.record()
    return Journal.begin(
        journal_path(cfg.state_path),
        current,
        now(),
        gitrepo.head(cfg.root),
        account=account,
        uncommitted=gitrepo.uncommitted(cfg.root, inputs(cfg, work)),
        mirror=home.journal_add if home.keeps_journal else None,
        sign=seal.signer(account),
    )


def _execute(
    cfg: config.Config,
    client: Account,
    home: store.StateStore,
    current: State,
    stored: State | None,
    work: Sequence[Change],
    remote: Mapping[str, RemoteVoice],
    listed_at: float,
    executor_for: Callable[[int, Callable[[Event], None]], Callable[[Journal], Executor]],
    parallelism: int,
    reporter: Reporter,
) -> tuple[Outcome, State, bool, VoicectlError | None]:
    """Journal, clone, and fold: the state's one write, from the state the apply began
    from (none, for a first apply: the journal says it began from an empty state)."""
    progress = reporter.progress(len(work))
    log = _begin(cfg, client, home, current, work)
    outcome = None
    stopped = None
    interrupted = False
    executor = None
    try:
        executor = executor_for(parallelism, progress)(log)
        outcome = executor.run(work, current.voice_ids(), remote, listed_at)
    except KeyboardInterrupt:
        interrupted = True
        raise
    except VoicectlError as exc:  # stopped (a clone maybe in Coze's hands): said last
        stopped = exc
        outcome = executor.outcome if executor is not None else Outcome()
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
                return repository.with_blobs(cfg, record_remote(client, folded, done, reporter))

        final, folded = recovery.fold_or_keep(
            cfg.state_path, current, reporter.notice, finish, home, stored=stored is not None,
            ours=client.seal(),
        )  # fmt: skip
        if interrupted:  # what ^C left, before click says "Aborted."
            _say_interrupted(reporter, recovery.recorded(current, final), folded)
    assert outcome is not None  # else the exception went on
    return outcome, final, folded, stopped


def _say_interrupted(reporter: Reporter, said: str, folded: bool) -> None:
    reporter.notice(
        f"Interrupted: {'in the state now: ' + said if said else 'no clone ended'}"
        f"{'' if folded else '; the journal keeps the clones in flight'}; the "
        "changes not started were not sent. `voicectl apply` carries on."
    )


def inputs(cfg: config.Config, work: Sequence[Change]) -> list[str]:
    """What an apply is made from, relative to the repository: the configuration, every
    declaration file, and the takes it sends."""
    takes = {c.after.audio.path for c in work if c.after}
    return [config.CONFIG_FILE, *declaration_files(cfg), *sorted(takes)]


def record_remote(
    client: Account, final: State, done: Sequence[tuple[Change, str | None]], reporter: Reporter
) -> State:
    """Record Coze's facts for the state's voices after an apply: drift's baseline.

    A voice this apply created that Coze lists under another name than it was sent with
    (replies swapped between two clones by something in between) is said so, and its
    facts are not recorded, so that `voicectl drift` keeps showing it. Best effort, before
    the state is written: if the read fails, ``voicectl refresh`` records them later.
    """
    if not done:
        return final
    try:
        remote = planning.remote_voices(client, final)
    except VoicectlError as exc:
        reporter.notice(
            f"could not read Coze's voices after the apply ({exc.message}); run "
            "`voicectl refresh` later"
        )
        return final
    for change, voice_id in done:
        name = change.after.name if change.after else None
        listed = remote.get(voice_id or "")
        if change.spends_clone and listed is None:
            reporter.notice(
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
            reporter.notice(
                f"{change.address}: {changeparts.unproven_note(change.address, voice_id, why)}"
            )
    # Only this apply's clones: a voice someone else changed keeps its old facts, so that
    # drift goes on showing it until `voicectl refresh` acknowledges it.
    ours = {voice_id for change, voice_id in done if change.spends_clone}
    return transition.refreshed(
        final, {k: v for k, v in remote.items() if k in ours}, now(), trained_here=True
    )
