"""The state file: round trip, reviewable layout, atomic writes, refusing bad files."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.conftest import holding_lock
from voicectl.errors import StateError
from voicectl.files.yamlload import json_position
from voicectl.model import Declaration, DesiredVoice, Take
from voicectl.plan.planner import plan
from voicectl.state import lock
from voicectl.state import statefile as state_io
from voicectl.state.transition import applied

AT = "2026-11-25T06:00:00Z"


def desired(address: str, sha: str, **fields: str) -> DesiredVoice:
    decl = Declaration(
        address=address,
        name=fields.get("name", "N"),
        audio=f"a/{address}.wav",
        text=fields.get("text", "t"),
        language="en",
        space="1",
    )
    return DesiredVoice(decl, Take(f"a/{address}.wav", sha * 64, 10, "wav", 12.0))


_IDS = iter(range(7_400_000_000_000_000_000, 10**19))


def carried_out(current, desired_voices, ids=_IDS):
    """Record every actionable change of the plan as if Coze had done it."""
    for change in plan(desired_voices, current).actionable:
        new_id = str(next(ids)) if change.action in ("create", "replace") else None
        current = applied(current, change, AT, new_id)
    return current


def test_round_trip_is_lossless_and_sorted_with_two_space_indent(tmp_path: Path) -> None:
    current = carried_out(state_io.new_state(), [desired("b", "1"), desired("a", "2")])
    path = tmp_path / "state" / "voicectl.state.json"
    written = state_io.save(path, current)
    text = path.read_text()
    assert written.serial == current.serial + 1
    assert state_io.load(path, "s") == written
    data = json.loads(text)
    assert text == json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    assert list(data["voices"]) == ["a", "b"]
    assert data["voices"]["a"]["clones_used"] == 1 and data["voices"]["a"]["clone_limit"] == 10


def test_serial_bumps_on_every_write_and_lineage_stays(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    first = state_io.save(path, state_io.new_state())
    second = state_io.save(path, first)
    assert (first.serial, second.serial) == (1, 2)
    assert first.lineage == second.lineage
    assert len(first.lineage) == 36


def test_atomic_write_leaves_no_temp_files(tmp_path: Path) -> None:
    state_io.save(tmp_path / "s.json", state_io.new_state())
    assert [p.name for p in tmp_path.iterdir()] == ["s.json"]


def test_hash_index_records_every_clone_of_every_take() -> None:
    current = carried_out(state_io.new_state(), [desired("a", "1")])
    current = carried_out(current, [desired("a", "2")])
    current = carried_out(current, [desired("a", "1")])  # back to the first take
    voice_id = current.voices["a"].voice_id
    assert [(e.voice_id, e.clone) for e in current.takes["1" * 64]] == [
        (voice_id, 1),
        (voice_id, 3),
    ]
    assert [e.clone for e in current.takes["2" * 64]] == [2]
    assert current.voices["a"].clones_used == 3


def test_after_recording_a_plan_the_next_plan_is_empty() -> None:
    voices = [desired("a", "1"), desired("b", "2"), desired("c", "3")]
    current = carried_out(state_io.new_state(), voices)
    assert not plan(voices, current).has_changes
    changed = [desired("a", "9"), desired("renamed", "2"), desired("c", "3", text="new")]
    current = carried_out(current, changed)
    assert not plan(changed, current).has_changes


def test_orphaned_voice_ids_are_kept() -> None:
    current = carried_out(state_io.new_state(), [desired("a", "1")])
    voice_id = current.voices["a"].voice_id
    current = carried_out(current, [])
    assert current.voices == {}
    assert [r.voice_id for r in current.orphans] == [voice_id]
    assert state_io.parse(state_io.dumps(current), "s").orphans[0].orphaned_at == AT


BAD_STATES = [
    pytest.param(b"", "empty", id="empty"),
    pytest.param(b'{"format_version": 1, "lineage": ', "not valid JSON", id="truncated"),
    pytest.param(b"\xff\xfe{}", "not UTF-8", id="binary"),
    pytest.param(b"[]", "JSON object", id="not-an-object"),
    pytest.param(
        b'{"format_version": 99, "lineage": "x", "serial": 1}',
        "newer voicectl",
        id="future-version",
    ),
    pytest.param(
        json.dumps(
            {
                "format_version": 1,
                "lineage": "00000000-0000-4000-8000-000000000000",
                "serial": "7",
                "voices": {},
                "orphans": [],
                "takes": {},
            }
        ).encode(),
        "field serial",
        id="hand-edited-type",
    ),
    pytest.param(
        json.dumps(
            {
                "format_version": 1,
                "lineage": "00000000-0000-4000-8000-000000000000",
                "serial": 1,
                "voices": {"a": {"voice_id": "1"}},
                "orphans": [],
                "takes": {},
            }
        ).encode(),
        "voices.a",
        id="hand-edited-missing-fields",
    ),
]


@pytest.mark.parametrize(("raw", "says"), BAD_STATES)
def test_bad_state_is_a_clear_error_and_is_not_touched(
    tmp_path: Path, raw: bytes, says: str
) -> None:
    path = tmp_path / "s.json"
    path.write_bytes(raw)
    with pytest.raises(StateError) as caught:
        state_io.load(path, "state/s.json")
    assert says in caught.value.message and "state/s.json" in caught.value.message
    assert path.read_bytes() == raw


def test_a_hand_edited_field_is_named_with_its_line_and_column(tmp_path: Path) -> None:
    body = {
        "format_version": 1,
        "lineage": "00000000-0000-4000-8000-000000000000",
        "orphans": [],
        "serial": "7",
        "takes": {},
        "voices": {},
    }
    path = tmp_path / "s.json"
    path.write_text(json.dumps(body, indent=2))
    with pytest.raises(StateError) as caught:
        state_io.load(path, "state/s.json")
    assert caught.value.message.startswith("state/s.json:5:13: field serial")


def test_json_position_finds_keys_and_indexes_and_says_none_otherwise() -> None:
    raw = b'{\n  "a": [1, {"b": "x"}],\n  "c": {"d": null}\n}\n'
    assert json_position(raw, []) == (1, 1)
    assert json_position(raw, ["a", 1, "b"]) == (2, 18)
    assert json_position(raw, ["c", "d"]) == (3, 14)
    for missing in (["z"], ["a", 5], ["a", "0"], ["c", 0]):
        assert json_position(raw, missing) is None
    assert json_position(b"\xff{}", ["a"]) is None


def test_missing_state_is_none(tmp_path: Path) -> None:
    assert state_io.load(tmp_path / "none.json", "none.json") is None


def test_a_lock_file_removed_while_held_lets_no_second_writer_in(tmp_path: Path) -> None:
    """`git clean -fdX` (or an `rm`) of the lock file while an apply runs: a second apply
    must still be refused, not take a new file's lock beside the first."""
    state_path = tmp_path / "state" / "voicectl.state.json"
    state_path.parent.mkdir()
    with holding_lock(state_path):
        lock.lock_path(state_path).unlink()
        removed = re.escape("its lock file voicectl.state.json.lock was removed")
        with (
            pytest.raises(StateError, match=removed),
            lock.locked(state_path, "voicectl apply", "T", lambda m: None),
        ):
            pass
        assert not lock.lock_path(state_path).exists()  # and left none of its own
    with lock.locked(state_path, "voicectl apply", "T", lambda m: None):  # free once it ends
        pass


def test_the_lock_leaves_no_file_behind_in_the_cache_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each state's lock in the user's cache is removed as it is let go: a machine that
    applies many repositories does not gather a file per state path ever locked."""
    from voicectl.state import lock

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    for n in range(3):
        state_path = tmp_path / f"repo{n}" / "voicectl.state.json"
        state_path.parent.mkdir()
        with lock.locked(state_path, "voicectl apply", "T", lambda m: None):
            assert [p.name for p in (tmp_path / "cache" / "voicectl" / "locks").iterdir()]
    assert list((tmp_path / "cache" / "voicectl" / "locks").iterdir()) == []
