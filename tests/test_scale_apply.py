"""The apply path at scale: the journal's one-pass fold, and applies under rate limits."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import Coze, VoiceRepo, assert_converged, many
from tests.test_properties import (
    LINEAGE,
    PROFILE,
    declarations,
    fresh_ids,
    plan_options,
    reachable_states,
    records,
    stamp,
)
from voicectl.model import NEW_VOICE_ACTIONS, Action, Budget, Change, Cost, State
from voicectl.plan.planner import plan
from voicectl.planfile import spec_from_json
from voicectl.state import transition
from voicectl.state.transition import Done, applied, applied_all


def one_by_one(state: State, done: list[Done]) -> State:
    for item in done:
        state = applied(
            state, item.change, item.at, item.voice_id, logid=item.logid, commit=item.commit
        )
    return state


def assert_folds_alike(state: State, done: list[Done]) -> None:
    """One fold of all of ``done`` equals one fold per change (the index carried across
    steps is right), errors included, in the order the state file is written in."""
    try:
        expected: State | Exception = one_by_one(state, done)
    except (KeyError, ValueError) as exc:
        expected = exc
    if isinstance(expected, Exception):
        with pytest.raises(type(expected)):
            applied_all(state, done)
        return
    got = applied_all(state, done)
    assert got == expected
    assert list(got.voices) == list(expected.voices)
    assert list(got.takes) == list(expected.takes)
    assert got.orphans == expected.orphans


@st.composite
def applies(draw: st.DrawFn) -> tuple[State, list[Done]]:
    """A reachable state and what an apply got done: a plan's changes, some of them, in any
    order (chains of renames half applied displace voices), with fresh ids and logids."""
    state = draw(reachable_states())
    result = plan(draw(declarations()), state, None, draw(plan_options(selective=True)))
    todo = list(draw(st.permutations(list(result.actionable))))
    if draw(st.booleans()):
        todo = [c for c in todo if draw(st.booleans())]
    ids = fresh_ids(state)
    if draw(st.booleans()):  # Coze handing back an id the state already holds
        known = [r.voice_id for r in records(state)]
        reused = draw(st.lists(st.sampled_from(known), max_size=2)) if known else []
        ids = itertools.chain(reused, ids)
    done = []
    for step, change in enumerate(todo):
        voice_id = next(ids) if change.action in NEW_VOICE_ACTIONS else change.voice_id
        logid = draw(st.sampled_from(("", f"log{step}")))
        done.append(
            Done(change, stamp(100 + step), voice_id, logid, draw(st.sampled_from(("", "c1"))))
        )
    return state, done


@PROFILE
@given(applies())
def test_applied_all_equals_applying_one_change_at_a_time(case: tuple[State, list[Done]]) -> None:
    state, done = case
    assert_folds_alike(state, done)


@PROFILE
@given(reachable_states(), st.data())
def test_applied_all_matches_on_changes_naming_any_voice(state: State, data: st.DataObject) -> None:
    """Changes drawn at random (not from a plan): unknown ids, displaced voices, orphans."""
    known = [r.voice_id for r in records(state)] or ["7400000000000000001"]
    addresses = [*state.voices, "a", "b", "z"]
    done = []
    for step in range(data.draw(st.integers(1, 6))):
        action = data.draw(st.sampled_from(("create", "replace", "retrain", "move", "orphan")))
        voice_id = data.draw(st.sampled_from([*known, "7499999999999999999"]))
        after = {
            "name": "N",
            "language": "en",
            "text": "t",
            "space": None,
            "audio": {
                "sha256": f"{data.draw(st.integers(1, 3)):064x}",
                "path": f"audio/{step}.wav",
                "format": "wav",
                "size": 10,
                "duration": 10.0,
            },
        }
        change = Change(
            address=data.draw(st.sampled_from(addresses)),
            action=Action(action),
            reasons=(),
            voice_id=None if action == "create" else voice_id,
            before=None,
            after=spec_from_json(after),
            budget=Budget(None, None),
            cost=Cost(0, 0),
        )
        new_id = None
        if action in NEW_VOICE_ACTIONS:  # now and then an id the state already holds
            new_id = data.draw(st.sampled_from([str(7450000000000000000 + step), *known]))
            known.append(new_id)
        done.append(Done(change, stamp(200 + step), new_id))
    assert_folds_alike(state, done)


def test_applied_all_of_nothing_is_the_state() -> None:
    state = State(LINEAGE, 3)
    assert applied_all(state, []) == state
    assert transition.applied_all(replace(state, serial=4), []).serial == 4


# --- rate limits, against the emulator on a loopback socket --------------------------------


def test_an_apply_under_a_rate_limit_slows_down_and_clones_every_voice_once(
    repo: VoiceRepo, coze: Coze, run: Callable[..., Any]
) -> None:
    """Coze's 429s (code 4020, Retry-After) reject clones it never carried out: each is
    sent again after its pause, nothing fails, and no voice is cloned twice."""
    many(repo, 14)
    coze.faults(rate_limit_qps=3)
    result = run(repo.root, "apply", "--auto-approve", "--parallelism", "8", env=coze.env())
    assert result.exit_code == 0, result.output
    assert "failed" not in result.output
    coze.faults(rate_limit_qps=None)
    assert len(coze.ledger()) == 14
    assert sorted(c["voice_name"] for c in coze.ledger()) == sorted(
        f"V{i:02d} voice" for i in range(14)
    )
    assert_converged(repo.root, coze)


def test_a_rate_limited_list_is_retried_not_failed(
    repo: VoiceRepo, coze: Coze, run: Callable[..., Any]
) -> None:
    """The reads before and after the clones go through the same limit and also wait."""
    many(repo, 2)
    coze.faults(fail={"code": 4020, "http_status": 429, "count": 2, "endpoint": "list"})
    result = run(repo.root, "apply", "--auto-approve", env=coze.env())
    assert result.exit_code == 0, result.output
    assert_converged(repo.root, coze)
