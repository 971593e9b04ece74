"""Properties of the planner over random declarations, reachable states and remote snapshots.

States are reachable ones: a random history of plans folded through
``transition.applied`` (all of a plan, or the part a failed apply got done, in any
order), ``voicectl import``, ``state mv``, ``state rm`` and refresh, plus hand edits a
real repository meets (budgets spent by earlier applies, protection). An apply here is
exactly that fold, with a fresh voice id for every create and replace.

CI runs derandomized with a modest number of examples, so it sees the same inputs every
time; ``HYPOTHESIS_PROFILE=thorough`` runs many more, randomly seeded. The bugs these
properties found are pinned by the regression tests at the end (``test_bug_*``).
"""

from __future__ import annotations

import itertools
import json
import os
import sys
import unicodedata
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from typing import Any

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from voicectl.files import jsontext, schemas
from voicectl.model import (
    ACTIONS,
    CLONE_LIMIT,
    CLONING_ACTIONS,
    CNY_PER_NEW_VOICE,
    CNY_PER_VOICE_MONTH,
    NEW_VOICE_ACTIONS,
    Change,
    Cost,
    Declaration,
    DesiredVoice,
    Plan,
    RemoteVoice,
    State,
    Take,
    TakeEntry,
    TakeRef,
    VoiceRecord,
    VoiceSpec,
    control_character,
)
from voicectl.plan.changeparts import clones_left
from voicectl.plan.planner import ORDER, PlanOptions, plan
from voicectl.planfile import change_from_json, plan_to_json
from voicectl.render import render_json
from voicectl.state import statefile as statefile
from voicectl.state import transition

settings.register_profile(
    "voicectl-ci",
    max_examples=50,
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
settings.register_profile(
    "thorough",
    max_examples=3000,
    deadline=None,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
PROFILE = settings.get_profile(os.environ.get("HYPOTHESIS_PROFILE", "voicectl-ci"))

LINEAGE = "00000000-0000-4000-8000-000000000000"
ADDRESSES = ("a", "b", "c", "d", "e")
SPACES = ("7350000000000000001", "7350000000000000002")
TAKES = (1, 2, 3, 4)  # few takes, so declarations often share one and adoption is exercised
TEXTS = ("hello", "good morning")
LANGUAGES = ("en", "zh")
NAMES = ("Voice", "Narrator")
PREVIEWS = (None, "", "Hi")
FIRST_VOICE_ID = 7400000000000000000
NEW_VOICE_COST = Cost(CNY_PER_NEW_VOICE, CNY_PER_VOICE_MONTH)
STATE_ONLY = ("move", "update", "noop")

World = tuple[list[DesiredVoice], State, "dict[str, RemoteVoice] | None", PlanOptions]


def sha(n: int) -> str:
    return f"{n:064x}"


def stamp(step: int) -> str:
    return f"2026-01-01T{step // 60:02d}:{step % 60:02d}:00Z"


def take(n: int, path: str) -> Take:
    """The take with content ``n``: the same bytes always have the same facts."""
    return Take(path=path, sha256=sha(n), size=1000 + n, format="wav", duration=10.0 + n / 4)


def desire(
    address: str,
    n: int = 1,
    *,
    path: str | None = None,
    space: str | None = SPACES[0],
    text: str = TEXTS[0],
    language: str = LANGUAGES[0],
    name: str = NAMES[0],
    preview_text: str | None = None,
    protect: bool | None = None,
    file: str = "voices/voices.yaml",
    line: int = 1,
) -> DesiredVoice:
    path = path or f"audio/{address}.wav"
    decl = Declaration(
        address=address,
        name=name,
        audio=path,
        text=text,
        language=language,
        space=space,
        preview_text=preview_text,
        protect=protect,
        file=file,
        line=line,
        column=1,
        audio_line=line + 2,
        audio_column=3,
    )
    return DesiredVoice(decl, take(n, path))


# --- applying plans -------------------------------------------------------------------


def records(state: State) -> list[VoiceRecord]:
    return [*state.voices.values(), *state.orphans]


def voice_ids(state: State) -> list[str]:
    return [r.voice_id for r in records(state)]


def fresh_ids(state: State) -> Iterator[str]:
    """Voice ids Coze would hand out: never one already known."""
    n = max([FIRST_VOICE_ID, *(int(v) for v in voice_ids(state))]) + 1
    while True:
        yield str(n)
        n += 1


def fold(
    state: State, changes: Sequence[Change], at: str, ids: Iterator[str] | None = None
) -> tuple[State, dict[str, str]]:
    """Apply: every change folded through ``transition.applied``; new ids by address."""
    ids = ids or fresh_ids(state)
    new: dict[str, str] = {}
    for change in changes:
        voice_id = None
        if change.action in NEW_VOICE_ACTIONS:
            voice_id = new[change.address] = next(ids)
        state = transition.applied(state, change, at, voice_id)
    return state, new


def remote_after(
    remote: Mapping[str, RemoteVoice] | None, changes: Sequence[Change], new: Mapping[str, str]
) -> dict[str, RemoteVoice] | None:
    """What Coze's list endpoint says after ``changes`` were carried out."""
    if remote is None:
        return None
    after = dict(remote)
    for change in changes:
        if change.action == "retrain" and change.voice_id in after:
            was = after[change.voice_id]
            after[was.voice_id] = replace(
                was, available_training_times=was.available_training_times - 1
            )
        elif change.action in NEW_VOICE_ACTIONS:
            voice_id = new[change.address]
            assert change.after is not None
            name = change.after.name
            after[voice_id] = RemoteVoice(voice_id, name, CLONE_LIMIT - 1, 0, 0)
    return after


def satisfied(options: PlanOptions, done: Sequence[Change]) -> PlanOptions:
    """The same command line again, less the --retrain/--replace requests carried out."""
    addresses = {c.address for c in done}
    return replace(
        options, retrain=options.retrain - addresses, replace=options.replace - addresses
    )


def by_address(result: Plan) -> dict[str, Change]:
    return {c.address: c for c in result.changes}


def find(state: State, voice_id: str) -> VoiceRecord:
    (record,) = [r for r in records(state) if r.voice_id == voice_id]
    return record


# --- strategies -------------------------------------------------------------------------


@st.composite
def declaration(draw: st.DrawFn, address: str, line: int = 1) -> DesiredVoice:
    n = draw(st.sampled_from(TAKES))
    return desire(
        address,
        n,
        path=draw(st.sampled_from([f"audio/{address}.wav", f"takes/{n}.wav"])),
        space=draw(st.sampled_from((*SPACES, None))),
        text=draw(st.sampled_from(TEXTS)),
        language=draw(st.sampled_from(LANGUAGES)),
        name=draw(st.sampled_from(NAMES)),
        preview_text=draw(st.sampled_from(PREVIEWS)),
        protect=draw(st.sampled_from((None, False, True))),
        line=line,
    )


@st.composite
def declarations(draw: st.DrawFn) -> list[DesiredVoice]:
    chosen = draw(st.lists(st.sampled_from(ADDRESSES), unique=True, max_size=len(ADDRESSES)))
    return [draw(declaration(address, 1 + 6 * i)) for i, address in enumerate(chosen)]


def address_sets(max_size: int = 2) -> st.SearchStrategy[frozenset[str]]:
    return st.frozensets(st.sampled_from(ADDRESSES), max_size=max_size)


@st.composite
def plan_options(draw: st.DrawFn, *, selective: bool = False) -> PlanOptions:
    """--retrain/--replace/--allow-protected; with ``selective``, --target/--exclude too."""
    return PlanOptions(
        targets=draw(address_sets()) if selective else frozenset(),
        excludes=draw(address_sets(1)) if selective else frozenset(),
        retrain=draw(address_sets()),
        replace=draw(address_sets(1)),
        allow_protected=draw(st.booleans()),
    )


def _hand_edited(draw: st.DrawFn, state: State) -> State:
    """A record as older applies left it: budget spent, protected."""
    if not records(state):
        return state
    record = draw(st.sampled_from(records(state)))
    edited = replace(
        record,
        clones_used=draw(st.integers(record.clones_used, CLONE_LIMIT)),
        protect=record.protect or draw(st.booleans()),
    )
    voices = {a: edited if r is record else r for a, r in state.voices.items()}
    orphans = tuple(edited if r is record else r for r in state.orphans)
    return replace(state, voices=voices, orphans=orphans)


def _command(draw: st.DrawFn, state: State, kind: str, at: str) -> State:
    """``voicectl import``, ``state mv``, ``state rm`` or ``refresh``, on valid arguments."""
    free = [a for a in ADDRESSES if a not in state.voices]
    if kind == "import" and free:
        address = draw(st.sampled_from(free))
        voice_id = next(fresh_ids(state))
        after = VoiceSpec.declared(draw(declaration(address)))
        left = draw(st.integers(0, CLONE_LIMIT - 1))
        coze = RemoteVoice(voice_id, after.name, left, 0, 0, after.language)
        return transition.imported(state, address, after, coze, at)
    if kind == "mv" and free and state.voices:
        old = draw(st.sampled_from(sorted(state.voices)))
        return transition.renamed(state, old, draw(st.sampled_from(free)))
    if kind == "rm" and state.voices:
        return transition.forgotten(state, draw(st.sampled_from(sorted(state.voices))), at)
    if kind == "refresh":
        return transition.refreshed(state, draw(remotes(state, least=0)) or {}, at)
    return state


@st.composite
def reachable_states(draw: st.DrawFn, max_steps: int = 6) -> State:
    """A state some history of applies, failed applies, commands and hand edits produced."""
    state = State(lineage=LINEAGE, serial=0)
    kinds = ["apply"] * 4 + ["partial", "edit", "import", "mv", "rm", "refresh"]
    for step in range(draw(st.integers(0, max_steps))):
        kind = draw(st.sampled_from(kinds))
        if kind == "edit":
            state = _hand_edited(draw, state)
        elif kind in ("apply", "partial"):
            result = plan(draw(declarations()), state, None, draw(plan_options(selective=True)))
            todo = list(result.actionable)
            if kind == "partial":  # a failed apply: some changes done, in any order
                todo = [c for c in draw(st.permutations(todo)) if draw(st.booleans())]
            state, _ = fold(state, todo, stamp(step))
        else:
            state = _command(draw, state, kind, stamp(step))
        state = replace(state, serial=state.serial + 1)
    return state


@st.composite
def remotes(draw: st.DrawFn, state: State, least: int = -1) -> dict[str, RemoteVoice] | None:
    """None (no refresh), or Coze's view: any budgets, some voices missing, a stranger."""
    if draw(st.booleans()):
        return None
    remote = {}
    for voice_id in voice_ids(state):
        if draw(st.booleans()):
            left = draw(st.integers(least, CLONE_LIMIT + 1))
            remote[voice_id] = RemoteVoice(voice_id, "remote", left, 0, 0)
    if draw(st.booleans()):
        remote["9900000000000000000"] = RemoteVoice("9900000000000000000", "stranger", 5, 0, 0)
    return remote


@st.composite
def worlds(draw: st.DrawFn, *, selective: bool = False) -> World:
    current = draw(reachable_states())
    return (
        draw(declarations()),
        current,
        draw(remotes(current)),
        draw(plan_options(selective=selective)),
    )


# --- (a) after a successful apply there is nothing left to do --------------------------


def _check_converged(before: Plan, after: Plan) -> None:
    assert after.actionable == (), f"left to do after apply: {after.actionable}"
    blocked = {c.address: c.reasons for c in before.changes if c.action == "blocked"}
    for change in after.changes:
        if change.action != "noop":
            assert change.action == "blocked", change
            assert blocked.get(change.address) == change.reasons, change


@PROFILE
@given(world=worlds(), data=st.data())
def test_after_a_successful_apply_the_plan_is_empty(world: World, data: st.DataObject) -> None:
    """Apply in any order, plan again: no-ops, and exactly what was blocked before."""
    desired, current, remote, options = world
    first = plan(desired, current, remote, options)
    order = data.draw(st.permutations(first.actionable), label="apply order")
    done, new = fold(current, order, stamp(100))
    again = plan(desired, done, remote_after(remote, order, new), satisfied(options, order))
    _check_converged(first, again)


@PROFILE
@given(world=worlds(selective=True))
def test_after_a_targeted_apply_its_targets_have_nothing_left_to_do(world: World) -> None:
    """--target/--exclude narrow an apply; the same command again finds nothing to do."""
    desired, current, remote, options = world
    first = plan(desired, current, remote, options)
    done, new = fold(current, first.actionable, stamp(100))
    remote = remote_after(remote, first.actionable, new)
    _check_converged(first, plan(desired, done, remote, satisfied(options, first.actionable)))


# --- (b) budgets ----------------------------------------------------------------------------


@PROFILE
@given(world=worlds())
def test_no_plan_spends_more_clones_than_a_voice_has_left(world: World) -> None:
    """Retrains fit the lower of the state's and Coze's budget; an exhausted voice blocks."""
    desired, current, remote, options = world
    result = plan(desired, current, remote, options)
    retrained = []
    for change in result.changes:
        if change.budget.before is not None:
            assert 0 <= change.budget.before <= CLONE_LIMIT
        if change.action == "retrain":
            assert change.voice_id is not None
            left = clones_left(find(current, change.voice_id), remote)
            assert change.budget.before == left >= 1
            assert change.budget.after == left - 1
            retrained.append(change.voice_id)
        elif change.action in NEW_VOICE_ACTIONS:
            assert change.budget.after == CLONE_LIMIT - 1
        else:
            assert change.budget.after == change.budget.before
        if "budget_exhausted" in change.reasons:
            assert change.action == "blocked" and change.budget.before == 0
    assert len(retrained) == len(set(retrained)), "one voice retrained twice in one plan"
    done, _ = fold(current, result.actionable, stamp(100))
    for record in records(done):
        assert 1 <= record.clones_used <= CLONE_LIMIT, record


@PROFILE
@given(current=reachable_states(), data=st.data())
def test_a_voice_with_no_clones_left_is_blocked_not_retrained(
    current: State, data: st.DataObject
) -> None:
    """A new transcript for an exhausted voice blocks, and names --replace."""
    assume(current.voices)
    address = data.draw(st.sampled_from(sorted(current.voices)))
    record = replace(current.voices[address], clones_used=CLONE_LIMIT)
    exhausted = replace(current, voices={**current.voices, address: record})
    voice = desire(address, 1, space=record.space, text="a transcript never used before")
    retrain = data.draw(st.booleans(), label="--retrain too")
    options = PlanOptions(retrain=frozenset({address} if retrain else ()))
    change = by_address(plan([voice], exhausted, None, options))[address]
    assert change.action == "blocked"
    assert change.budget == replace(change.budget, before=0, after=0)
    assert ("budget_exhausted" in change.reasons) != record.protect
    if not record.protect:
        assert f"--replace {address}" in change.message


# --- (c) moves and renames are free --------------------------------------------------------


@st.composite
def relocated(draw: st.DrawFn, voices: Sequence[DesiredVoice]) -> list[DesiredVoice]:
    """The same takes under new addresses, paths, files or lines: nothing Coze sees.

    New addresses are fresh ones: renames onto another voice's address are the known
    bug of ``test_renaming_a_to_b_and_b_to_c_moves_both``.
    """
    out = []
    for voice in voices:
        d = voice.decl
        address = draw(st.sampled_from([d.address, f"{d.address}.renamed"]))
        path = draw(st.sampled_from([d.audio, f"moved/{address}/take.wav"]))
        file = draw(st.sampled_from([d.file, "voices/other.yaml"]))
        decl = replace(d, address=address, audio=path, file=file, line=d.line + 100)
        out.append(DesiredVoice(decl, replace(voice.take, path=path)))
    return draw(st.permutations(out))


@PROFILE
@given(current=reachable_states(), desired=declarations(), data=st.data())
def test_moving_or_renaming_declarations_never_costs_a_clone(
    current: State, desired: list[DesiredVoice], data: st.DataObject
) -> None:
    """Converge, then move files and rename addresses: only moves and no-ops, same voices."""
    current, _ = fold(current, plan(desired, current).actionable, stamp(100))
    settled = by_address(plan(desired, current))
    desired = [v for v in desired if settled[v.decl.address].action == "noop"]
    current, _ = fold(current, plan(desired, current).actionable, stamp(101))
    before = plan(desired, current)
    assert before.actionable == ()
    moved = data.draw(relocated(desired), label="relocated")
    result = plan(moved, current)
    assert result.clones_spent == 0 and result.cost == Cost(), result.changes
    changes = by_address(result)
    assert all(changes[v.decl.address].action in ("move", "noop") for v in moved)
    kept = {by_address(before)[v.decl.address].voice_id for v in desired}
    assert {changes[v.decl.address].voice_id for v in moved} == kept
    others = {(c.address, c.action, c.voice_id) for c in result.changes if c.voice_id not in kept}
    assert others == {
        (c.address, c.action, c.voice_id) for c in before.changes if c.voice_id not in kept
    }


# --- (d) determinism ----------------------------------------------------------------------


@PROFILE
@given(world=worlds(selective=True), data=st.data())
def test_planning_is_deterministic_byte_for_byte(world: World, data: st.DataObject) -> None:
    """Same inputs in any order, or the state read back from its file: the same JSON bytes."""
    desired, current, remote, options = world
    first = plan(desired, current, remote, options)
    expected = render_json(first)
    assert render_json(plan(desired, current, remote, options)) == expected
    shuffled = data.draw(st.permutations(desired), label="declaration order")
    assert render_json(plan(shuffled, current, remote, options)) == expected
    reread = statefile.parse(statefile.dumps(current), "state")
    assert render_json(plan(desired, reread, remote, options)) == expected
    if remote is not None:
        backwards = dict(reversed(list(remote.items())))
        assert render_json(plan(desired, current, backwards, options)) == expected
    settings_ = {"indent": 2, "sort_keys": True, "ensure_ascii": False}
    assert json.dumps(plan_to_json(first), **settings_) + "\n" == expected  # type: ignore[arg-type]


# --- other invariants of the product ------------------------------------------------------


@PROFILE
@given(world=worlds(selective=True))
def test_totals_are_the_sum_of_the_changes(world: World) -> None:
    """Summary, money and clones add up; only a new voice id costs money."""
    result = plan(*world)
    assert set(result.summary) == set(ACTIONS)
    assert sum(result.summary.values()) == len(result.changes)
    for action in ACTIONS:
        assert result.summary[action] == sum(1 for c in result.changes if c.action == action)
    new = sum(1 for c in result.changes if c.action in NEW_VOICE_ACTIONS)
    assert result.cost == Cost(new * CNY_PER_NEW_VOICE, new * CNY_PER_VOICE_MONTH)
    assert result.clones_spent == sum(1 for c in result.changes if c.action in CLONING_ACTIONS)
    for change in result.changes:
        assert change.cost == (NEW_VOICE_COST if change.action in NEW_VOICE_ACTIONS else Cost())
    assert result.has_changes == any(c.action != "noop" for c in result.changes)


@PROFILE
@given(world=worlds())
def test_every_address_and_voice_is_accounted_for_once(world: World) -> None:
    """Each declared or departing address has one change (or is renamed); no voice twice."""
    desired, current, remote, options = world
    result = plan(desired, current, remote, options)
    addresses = [c.address for c in result.changes]
    wanted = {v.decl.address for v in desired}
    assert len(addresses) == len(set(addresses))
    assert wanted <= set(addresses)
    # Moves of a departing address's own voice (an orphan taken back names the address
    # it once had, which may be a departing address too: that is not this address).
    renamed_from = [
        c.from_address
        for c in result.changes
        if c.from_address in current.voices
        and current.voices[c.from_address].voice_id == c.voice_id
    ]
    for address in set(current.voices) - wanted:
        assert (address in addresses) + renamed_from.count(address) == 1, address
    assert set(addresses) <= wanted | set(current.voices)
    touched = [c.voice_id for c in result.changes if c.voice_id is not None]
    assert len(touched) == len(set(touched)), "one voice id in two changes"
    assert set(touched) <= set(voice_ids(current))
    for change in result.changes:
        assert (change.voice_id is None) == (change.action == "create")
    order = [(ORDER[c.action], c.address) for c in result.changes]
    assert order == sorted(order)


@PROFILE
@given(world=worlds())
def test_a_change_that_spends_no_clone_never_changes_how_a_voice_sounds(world: World) -> None:
    """Moves, updates and no-ops keep the take, transcript, language and space."""
    for change in plan(*world).changes:
        if change.action in STATE_ONLY:
            assert change.before is not None and change.after is not None
            before, after = change.before, change.after
            assert (before.text, before.language, before.space) == (
                after.text,
                after.language,
                after.space,
            ), change
            assert before.audio.sha256 == after.audio.sha256


@PROFILE
@given(world=worlds(selective=True), data=st.data())
def test_apply_never_loses_a_voice_id_and_the_bill_matches_the_plan(
    world: World, data: st.DataObject
) -> None:
    """Orphaned and replaced ids stay recorded; billed voices grow by the plan's monthly delta."""
    desired, current, remote, options = world
    result = plan(desired, current, remote, options)
    order = data.draw(st.permutations(result.actionable), label="apply order")
    done, new = fold(current, order, stamp(100))
    before, after = voice_ids(current), voice_ids(done)
    assert len(after) == len(set(after)), "a voice id recorded twice"
    assert set(after) == set(before) | set(new.values())
    assert len(after) - len(before) == result.cost.monthly_cny_delta
    for change in order:
        if change.action in ("orphan", "replace") and change.voice_id:
            assert find(done, change.voice_id).orphaned_at == stamp(100)
    for address, record in done.voices.items():
        assert record.address == address and record.orphaned_at is None


@PROFILE
@given(world=worlds(selective=True))
def test_plans_and_states_survive_their_files(world: World) -> None:
    """Plan JSON matches its schema and reads back equal; applied states are valid files."""
    desired, current, remote, options = world
    result = plan(desired, current, remote, options)
    document = json.loads(render_json(result))
    schemas.validator("plan").validate(document)
    assert tuple(change_from_json(c) for c in document["changes"]) == result.changes
    done, _ = fold(current, result.actionable, stamp(100))
    raw = statefile.dumps(done)
    assert statefile.dumps(statefile.parse(raw, "state")) == raw
    # A write returns what a read of its bytes gives, made without the reading:
    read = statefile.from_json(json.loads(raw))
    assert statefile.as_read(done) == read
    assert statefile.dumps(statefile.as_read(done)) == raw


def _loosely_held(record: VoiceRecord, address: str) -> VoiceRecord:
    """A record as code could hold it and no read gives: another address, an int duration."""
    take = replace(record.take, duration=int(record.take.duration))
    return replace(record, address=address, take=take)


@PROFILE
@given(current=reachable_states(), data=st.data())
def test_a_write_returns_what_a_read_gives(current: State, data: st.DataObject) -> None:
    """``as_read`` equals the read of the written bytes, for states held loosely too, and
    the bytes it writes are those of the read (``dumps`` of both alike)."""
    loose = {
        a: _loosely_held(r, data.draw(st.sampled_from([a, "elsewhere"])))
        if data.draw(st.booleans())
        else r
        for a, r in current.voices.items()
    }
    held = replace(current, voices=loose, orphans=tuple(reversed(current.orphans)))
    read = statefile.from_json(json.loads(statefile.dumps(held)))
    assert statefile.as_read(held) == read
    assert statefile.dumps(statefile.as_read(held)) == statefile.dumps(read)
    for address, record in statefile.as_read(held).voices.items():
        assert record.address == address and type(record.take.duration) is float


_JSON_TEXT = st.text(st.characters(exclude_categories=["Cs"]))
_JSON_FLOATS = st.floats(allow_nan=False, allow_infinity=False)
_JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | _JSON_FLOATS.filter(lambda x: x == 0 or abs(x) >= 1e-4)
    | st.sampled_from([1e-4, -1e-4, 1e16, 1e300, 123456789.0, 0.0, -0.0])
    | _JSON_TEXT
)
_JSON_VALUES = st.recursive(
    _JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_JSON_TEXT, inner, max_size=4),
    max_leaves=24,
)


@PROFILE
@given(value=_JSON_VALUES, tiny=st.lists(_JSON_FLOATS, max_size=3))
def test_json_is_written_as_pythons_encoder_writes_it(value: object, tiny: list[float]) -> None:
    """``jsontext.dumps`` (orjson, or Python's encoder for what orjson refuses) is byte for
    byte ``json.dumps(indent=2, sort_keys=True, ensure_ascii=False)``; floats below 1e-4,
    which voicectl does not write, in another notation of the same value."""
    expected = json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    assert jsontext.dumps(value) == expected.encode()
    assert json.loads(jsontext.dumps(tiny)) == tiny


# --- regressions: bugs these properties found ------------------------------------------


S1 = SPACES[0]


def _record(address: str, voice_id: str, n: int, text: str, at: str) -> VoiceRecord:
    return VoiceRecord(
        address=address,
        voice_id=voice_id,
        space=S1,
        name=NAMES[0],
        language=LANGUAGES[0],
        text=text,
        preview_text=None,
        take=TakeRef(sha(n), f"audio/{address}.wav", "wav", 1000 + n, 10.0 + n / 4),
        clones_used=1,
        protect=False,
        created_at=at,
        updated_at=at,
    )


def _state(*voices: VoiceRecord) -> State:
    takes: dict[str, tuple[TakeEntry, ...]] = {}
    for r in voices:
        entry = TakeEntry(r.voice_id, r.address, r.clones_used, r.updated_at)
        takes[r.take.sha256] = (*takes.get(r.take.sha256, ()), entry)
    return State(LINEAGE, 1, {r.address: r for r in voices}, (), takes)


def _summary(result: Plan) -> set[tuple[str, str, Any]]:
    return {(c.address, c.action, c.voice_id) for c in result.changes}


def test_bug_renaming_two_voices_that_share_a_take_crossed_them() -> None:
    """a and b read one take with different transcripts; renamed, each keeps its voice."""
    current = _state(
        _record("a", "7400000000000000001", 1, "hello", stamp(1)),
        _record("b", "7400000000000000002", 1, "good morning", stamp(2)),
    )
    moved = [desire("c", 1, text="hello"), desire("d", 1, text="good morning")]
    result = plan(moved, current)
    assert _summary(result) == {
        ("c", "move", "7400000000000000001"),
        ("d", "move", "7400000000000000002"),
    }
    assert result.clones_spent == 0


def test_bug_renaming_an_imported_voice_created_a_new_one() -> None:
    """voicectl import, then rename the address: a move, not 138 CNY for a new voice."""
    voice = desire("a", 1)
    coze = RemoteVoice("7400000000000000001", "Voice", 9, 0, 0, "en")
    current = transition.imported(State(LINEAGE, 1), "a", VoiceSpec.declared(voice), coze, stamp(1))
    assert plan([voice], current).actionable == ()
    result = plan([desire("b", 1, path="audio/a.wav")], current)
    assert _summary(result) == {("b", "move", "7400000000000000001")}
    assert result.cost == Cost()


def test_bug_a_chain_of_renames_retrained_and_created() -> None:
    """A chain of renames (a -> b, b -> c) with the same takes spends nothing."""
    current = _state(
        _record("a", "7400000000000000001", 1, "hello", stamp(1)),
        _record("b", "7400000000000000002", 2, "hello", stamp(1)),
    )
    moved = [desire("b", 1, path="audio/a.wav"), desire("c", 2, path="audio/b.wav")]
    result = plan(moved, current)
    assert result.clones_spent == 0 and result.cost == Cost()
    assert _summary(result) == {
        ("b", "move", "7400000000000000001"),
        ("c", "move", "7400000000000000002"),
    }


def test_bug_a_refresh_wrote_a_negative_budget_the_schema_refuses() -> None:
    """Coze reporting -1 trainings left (as the planner already tolerates) keeps the state valid."""
    current = _state(_record("a", "7400000000000000001", 1, "hello", stamp(1)))
    coze = {"7400000000000000001": RemoteVoice("7400000000000000001", "Voice", -1, 0, 0)}
    refreshed = transition.refreshed(current, coze, stamp(2))
    statefile.parse(statefile.dumps(refreshed), "state")


def test_bug_a_chain_applied_in_any_order_keeps_every_voice_id() -> None:
    """A move onto an address whose voice is moved on by a later change: applied first,
    it overwrote that voice in the state (its id lost) before the later move ran."""
    current = _state(
        _record("a", "7400000000000000001", 1, "hello", stamp(1)),
        _record("b", "7400000000000000002", 2, "hello", stamp(1)),
    )
    moved = [desire("b", 1, path="audio/a.wav"), desire("c", 2, path="audio/b.wav")]
    changes = plan(moved, current).actionable
    ends = set()
    for order in itertools.permutations(changes):
        after = current
        for change in order:
            after = transition.applied(after, change, stamp(2))
        ids = {r.voice_id for r in (*after.voices.values(), *after.orphans)}
        assert {"7400000000000000001", "7400000000000000002"} <= ids
        ends.add(tuple(sorted((a, r.voice_id) for a, r in after.voices.items() if a != "a")))
        assert plan(moved, after).actionable == ()
    assert ends == {(("b", "7400000000000000001"), ("c", "7400000000000000002"))}


# --- control characters -------------------------------------------------------------------


def _first_control(text: str, allow: str = "") -> str | None:
    """The definition, character by character (what control_character's fast path skips)."""
    for char in text:
        skipped = char in allow or char in "\u200c\u200d"
        if not skipped and unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp"):
            return char
    return None


def test_control_character_finds_every_control_code_point() -> None:
    """Every one of the 1,114,112 code points, alone and after printable text."""
    for code in range(sys.maxunicode + 1):
        char = chr(code)
        expected = _first_control(char)
        assert control_character(char) == expected, hex(code)
        assert control_character("Voice " + char) == expected, hex(code)


@given(st.text(), st.text(max_size=3))
def test_control_character_is_its_definition(text: str, allow: str) -> None:
    assert control_character(text, allow) == _first_control(text, allow)
