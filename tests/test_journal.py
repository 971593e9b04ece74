"""A damaged apply journal is refused, never folded and never a crash.

The journal lies in the repository beside the state, where a hand, a merge or a failing
disk can change it. A line that is JSON but not a whole record (a field missing or of
the wrong kind, a seq used twice, a kind voicectl never writes, a voice id the state
cannot take) stops `plan` and `apply` with one error naming the journal, the line and
the field: exit 1, no traceback, nothing written and nothing sent.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.badinput import assert_one_error, audited, tree
from tests.conftest import VoiceRepo
from tests.test_properties import PROFILE
from voicectl.apply.reconcile import candidates, unproven
from voicectl.errors import StateError
from voicectl.model import Action, Budget, Change, Cost, RemoteVoice, State
from voicectl.planfile import change_to_json, spec_from_json
from voicectl.state import statefile as state_io
from voicectl.state import transition
from voicectl.state.replay import replay

S = "state/voicectl.state.json"
J = S + ".journal"
OFFLINE = {"COZE_API_TOKEN": "", "COZE_API_BASE": ""}
NOWHERE = {"COZE_API_TOKEN": "x", "COZE_API_BASE": "http://127.0.0.1:9"}
AT = "2027-01-15T08:00:00Z"
HELD = "7400000000000000001"  # the voice the state holds, at address a
NEW = "7400000000000000002"  # the voice the journal's clone made, at address b
T = 1_800_000_000.0


def change(address: str, action: str = "create", voice_id: str | None = None) -> Change:
    after = {
        "name": f"Voice {address}",
        "language": "en",
        "space": "7350000000000000001",
        "text": "The take.",
        "preview_text": None,
        "protect": False,
        "audio": {
            "sha256": "ab" * 32,
            "path": f"audio/{address}.wav",
            "format": "wav",
            "size": 1000,
            "duration": 12.0,
        },
    }
    spec = spec_from_json(after)
    return Change(address, Action(action), ("new",), voice_id, None, spec, Budget(None, 9), Cost())


def held_state() -> State:
    return transition.applied(state_io.new_state(), change("a"), AT, HELD)


def good_lines(base: State) -> list[dict[str, Any]]:
    """A journal as an apply writes it: begin, a clone of b done, a retrain of a sent."""
    return [
        {"type": "begin", "lineage": base.lineage, "serial": base.serial, "at": AT},
        {
            "type": "pending",
            "seq": 1,
            "change": change_to_json(change("b")),
            "started_at": AT,
            "started_unix": T,
            "before": {"ids": [], "listed_at": T - 1},
        },
        {
            "type": "done",
            "seq": 1,
            "at": AT,
            "voice_id": NEW,
            "logid": "L1",
            "reconciled": False,
        },
        {
            "type": "pending",
            "seq": 2,
            "change": change_to_json(change("a", "retrain", HELD)),
            "started_at": AT,
            "started_unix": T,
            "before": {"update_time": 1, "available_training_times": 9, "listed_at": T - 1},
        },
    ]


def write_journal(path: Path, lines: list[Any]) -> None:
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")


@pytest.fixture
def journaled(repo: VoiceRepo) -> tuple[VoiceRepo, list[dict[str, Any]]]:
    """A repository declaring a and b, a state holding a, and a journal of an apply that
    cloned b and lost the reply to a's retrain; and that journal's records."""
    repo.declare({"a": repo.voice("a"), "b": repo.voice("b", freq=550)})
    lines = good_lines(state_io.save(repo.root / S, held_state()))
    write_journal(repo.root / J, lines)
    return repo, lines


Edit = Callable[[list[dict[str, Any]]], object]


def _set(line: int, path: str, value: object) -> Edit:
    """Set the field at dotted ``path`` of line ``line`` (1-based) to ``value``."""

    def edit(lines: list[dict[str, Any]]) -> None:
        *outer, last = path.split(".")
        record = lines[line - 1]
        for name in outer:
            record = record[name]
        record[last] = value

    return edit


def _drop(line: int, path: str) -> Edit:
    def edit(lines: list[dict[str, Any]]) -> None:
        *outer, last = path.split(".")
        record = lines[line - 1]
        for name in outer:
            record = record[name]
        record.pop(last, None)

    return edit


def _add(record: object) -> Edit:
    return lambda lines: lines.append(record)


def _copy_of(line: int, **changes: object) -> Edit:
    def edit(lines: list[dict[str, Any]]) -> None:
        lines.append({**copy.deepcopy(lines[line - 1]), **changes})

    return edit


HOSTILE = [
    pytest.param(_set(3, "voice_id", None), 3, "voice_id", id="create-done-voice-id-null"),
    pytest.param(_set(3, "voice_id", "abc"), 3, "voice_id", id="voice-id-not-digits"),
    pytest.param(_set(3, "voice_id", 7400000000000000002), 3, "voice_id", id="voice-id-number"),
    pytest.param(_set(3, "voice_id", HELD), 3, "voice_id", id="new-voice-id-the-state-holds"),
    pytest.param(_set(3, "at", "t"), 3, "at", id="done-at-not-a-timestamp"),
    pytest.param(_drop(3, "at"), 3, "at", id="done-at-missing"),
    pytest.param(_set(3, "seq", "1"), 3, "seq", id="seq-a-string"),
    pytest.param(_set(3, "seq", True), 3, "seq", id="seq-a-boolean"),
    pytest.param(_drop(2, "change.address"), 2, "change.address", id="address-missing"),
    pytest.param(_set(2, "change.address", "B\n"), 2, "change.address", id="address-bad"),
    pytest.param(_drop(2, "change"), 2, "change", id="change-missing"),
    pytest.param(_set(2, "change", [[[{}]]]), 2, "change", id="change-nested-garbage"),
    pytest.param(_set(2, "change.action", "noop"), 2, "change.action", id="action-noop"),
    pytest.param(_set(2, "change.budget", None), 2, "change.budget", id="budget-null"),
    pytest.param(
        _set(2, "change.after.audio.size", "big"),
        2,
        "change.after.audio.size",
        id="audio-size-a-string",
    ),
    pytest.param(
        _set(2, "change.after.language", "xx"), 2, "change.after.language", id="language-unknown"
    ),
    pytest.param(_drop(2, "change.after.name"), 2, "change.after.name", id="name-missing"),
    pytest.param(_set(2, "change.after", None), 2, "change.after", id="create-after-null"),
    pytest.param(_set(2, "started_unix", "soon"), 2, "started_unix", id="started-unix-text"),
    pytest.param(_set(2, "before.ids", 5), 2, "before.ids", id="witness-ids-a-number"),
    pytest.param(
        _drop(4, "before.available_training_times"),
        4,
        "before.available_training_times",
        id="witness-half-missing",
    ),
    pytest.param(_set(4, "change.voice_id", None), 4, "change.voice_id", id="retrain-no-voice"),
    pytest.param(_set(1, "serial", "1"), 1, "serial", id="begin-serial-a-string"),
    pytest.param(_set(1, "lineage", None), 1, "lineage", id="begin-lineage-null"),
    pytest.param(_set(1, "account", "me"), 1, "account", id="begin-account-a-string"),
    pytest.param(_copy_of(2), 5, "seq", id="pending-seq-twice"),
    pytest.param(_copy_of(3), 5, "seq", id="outcome-twice"),
    pytest.param(_copy_of(3, seq=9), 5, "seq", id="outcome-of-no-clone"),
    pytest.param(_copy_of(1), 5, "type", id="a-second-begin"),
    pytest.param(_add({"type": "oops", "seq": 3}), 5, "type", id="unknown-kind"),
    pytest.param(_add({"seq": 3}), 5, "type", id="no-kind"),
    pytest.param(_add([1, 2]), 5, "", id="a-list-not-a-record"),
    pytest.param(_add("done"), 5, "", id="a-string-not-a-record"),
]


def _retrain_of_a_voice_not_held(lines: list[dict[str, Any]]) -> None:
    lines[3]["change"]["voice_id"] = "99"
    lines.append({"type": "done", "seq": 2, "at": AT, "voice_id": "99"})


HOSTILE.append(
    pytest.param(_retrain_of_a_voice_not_held, 4, "change.voice_id", id="retrain-voice-not-held")
)


@pytest.mark.parametrize("command", ["plan", "apply"])
@pytest.mark.parametrize(("edit", "line", "field"), HOSTILE)
def test_a_damaged_journal_is_refused_with_its_line_and_field(
    journaled: tuple[VoiceRepo, list[dict[str, Any]]],
    run,
    edit: Edit,
    line: int,
    field: str,
    command: str,
) -> None:
    repo, lines = journaled
    path = repo.root / J
    edit(lines)
    write_journal(path, lines)
    everything = repo.root.parent
    before = tree(everything)
    args = ["apply", "--auto-approve"] if command == "apply" else ["plan"]
    with audited() as audit:
        result = run(repo.root, *args, env=NOWHERE if command == "apply" else OFFLINE)
    assert_one_error(result, f"{path}:{line}: the apply journal is corrupt", "left unchanged")
    if field:
        assert f"field {field}: " in result.output
    else:
        assert "not a record" in result.output
    assert tree(everything) == before  # the state, the journal: nothing written
    assert audit.network == []


def test_the_undamaged_journal_is_replayed(
    journaled: tuple[VoiceRepo, list[dict[str, Any]]], run
) -> None:
    """The journal the hostile cases start from is a good one: plan folds b's clone and
    names a's retrain as a clone of unknown outcome."""
    result = run(journaled[0].root, "plan", env=OFFLINE)
    assert result.exit_code in (0, 2), result.output
    assert "1 clone(s) of unknown outcome: a" in result.output


# -- any JSON value in any field ----------------------------------------------------


def _paths(record: dict[str, Any], at: str = "") -> list[str]:
    """Every field of ``record``, dotted, nested ones included."""
    found = []
    for key, value in record.items():
        found.append(at + key)
        if isinstance(value, dict):
            found += _paths(value, f"{at}{key}.")
    return found


FIELDS = [
    (number, path)
    for number, record in enumerate(good_lines(held_state()), 1)
    for path in _paths(record)
]
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=8)
    | st.sampled_from(["", "7400000000000000003", AT, "create", "retrain", "orphan", "en"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=8,
)


@PROFILE
@given(where=st.sampled_from(FIELDS), value=json_values | st.just(...))
def test_any_value_in_any_field_is_refused_or_replayed_into_a_valid_state(
    tmp_path_factory: pytest.TempPathFactory, where: tuple[int, str], value: object
) -> None:
    """Whatever a field holds (``...``: the field is gone), replay either refuses the
    journal with a StateError naming the line, or folds it into a state the state schema
    takes, with clones of unknown outcome that reconciling can read."""
    root = tmp_path_factory.mktemp("journal")
    base = state_io.save(root / "s.json", held_state())
    lines = good_lines(base)
    line, path = where
    (_drop(line, path) if value is ... else _set(line, path, value))(lines)
    write_journal(root / "s.json.journal", lines)
    try:
        replayed = replay(root / "s.json.journal", base)
    except StateError as exc:
        assert f"s.json.journal:{line}: the apply journal is corrupt" in exc.message or (
            line == 1 and "s.json.journal: " in exc.message  # a begin of another state
        )
        return
    assert replayed is not None
    state_io.parse(state_io.dumps(replayed.state), "replayed")  # passes the state schema
    remote = [RemoteVoice(HELD, "Voice a", 8, 1, 2), RemoteVoice("7", "Voice b", 9, 1, 2)]
    for pending in replayed.pending:
        for found in candidates(pending, remote, replayed.state.voice_ids()):
            unproven(pending, found, T + 5, T + 1)
