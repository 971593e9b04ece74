"""Matching a lost clone to what the voice list shows, and the journal it comes from."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest

from voicectl.apply.reconcile import PROVEN_WINDOW_SECONDS, candidates, unproven
from voicectl.errors import StateError
from voicectl.model import Action, Budget, Change, Cost, RemoteVoice
from voicectl.planfile import spec_from_json
from voicectl.state import statefile as state_io
from voicectl.state.journal import Journal, Pending, journal_path
from voicectl.state.replay import replay

T = 1_800_000_000


def change(action: str, voice_id: str | None = None, before: int | None = None) -> Change:
    after = {
        "name": "Narrator",
        "language": "en",
        "space": "1",
        "text": "t",
        "preview_text": None,
        "protect": False,
        "audio": {
            "sha256": "a" * 64,
            "path": "a.wav",
            "format": "wav",
            "size": 1,
            "duration": 12.0,
        },
    }
    spec = spec_from_json(after)
    return Change("narrator", Action(action), (), voice_id, None, spec, Budget(before, 9), Cost())


def remote(
    voice_id: str, name: str = "Narrator", created: int = T, updated: int = T, left: int = 9
) -> RemoteVoice:
    return RemoteVoice(voice_id, name, left, created, updated)


CREATE = Pending(1, change("create"), "2027-01-15T08:00:00Z", float(T))
RETRAIN = Pending(2, change("retrain", "71", before=7), "2027-01-15T08:00:00Z", float(T))


@pytest.mark.parametrize(
    ("pending", "voices", "known", "expected"),
    [
        pytest.param(CREATE, [remote("71")], set(), ["71"], id="create found by name and time"),
        pytest.param(CREATE, [remote("71", name="Other")], set(), [], id="another name"),
        pytest.param(CREATE, [remote("71", created=T - 60)], set(), [], id="created before"),
        pytest.param(CREATE, [remote("71", created=T - 2)], set(), ["71"], id="within clock slack"),
        pytest.param(CREATE, [remote("71")], {"71"}, [], id="a voice the state knows"),
        pytest.param(CREATE, [remote("71"), remote("72")], set(), ["71", "72"], id="ambiguous"),
        pytest.param(RETRAIN, [remote("71", left=6)], set(), ["71"], id="retrain found"),
        pytest.param(RETRAIN, [remote("71", left=7)], set(), [], id="retrain budget unchanged"),
        pytest.param(
            RETRAIN, [remote("71", left=6, updated=T - 60)], set(), [], id="retrain updated before"
        ),
        pytest.param(RETRAIN, [remote("72", left=6)], set(), [], id="another voice id"),
    ],
)
def test_candidates(
    pending: Pending, voices: list[RemoteVoice], known: set[str], expected: list[str]
) -> None:
    assert [v.voice_id for v in candidates(pending, voices, known)] == expected


WITNESSED_CREATE = Pending(3, change("create"), "2027-01-15T08:00:00Z", float(T), {"ids": ["70"]})
WITNESSED_RETRAIN = Pending(
    4,
    change("retrain", "71", before=7),
    "2027-01-15T08:00:00Z",
    float(T),
    {"update_time": T - 100, "available_training_times": 7},
)


@pytest.mark.parametrize(
    ("pending", "voices", "expected"),
    [
        pytest.param(
            WITNESSED_CREATE, [remote("71", created=T - 3600)], ["71"], id="new, clocks apart"
        ),
        pytest.param(WITNESSED_CREATE, [remote("70"), remote("71")], ["71"], id="was there"),
        pytest.param(WITNESSED_CREATE, [remote("71", name="Other")], [], id="another name"),
        pytest.param(
            WITNESSED_RETRAIN,
            [remote("71", left=6, updated=T - 3600)],
            ["71"],
            id="fewer trainings, Coze's clock an hour behind",
        ),
        pytest.param(
            WITNESSED_RETRAIN, [remote("71", left=7, updated=T - 99)], ["71"], id="updated since"
        ),
        pytest.param(
            WITNESSED_RETRAIN, [remote("71", left=7, updated=T - 100)], [], id="unchanged"
        ),
    ],
)
def test_a_witness_decides_from_coze_s_facts_never_the_clocks(
    pending: Pending, voices: list[RemoteVoice], expected: list[str]
) -> None:
    assert [v.voice_id for v in candidates(pending, voices, set())] == expected


def sent(action: str, before: dict[str, object] | None) -> Pending:
    """A clone sent at T (Unix time) with the witness ``before``."""
    voice_id = "71" if action == "retrain" else None
    return Pending(5, change(action, voice_id, before=7), "2027-01-15T08:00:00Z", float(T), before)


LISTED = {"listed_at": T - 10}  # the witness was read 10 s before the send
WINDOW = PROVEN_WINDOW_SECONDS


@pytest.mark.parametrize(
    ("pending", "found", "ended", "read_at", "why"),
    [
        pytest.param(
            sent("create", {"ids": [], **LISTED}), remote("71"), T + 30, T + 40, None, id="prompt"
        ),
        pytest.param(
            sent("create", {"ids": [], **LISTED}),
            remote("71"),
            T + 600,
            T + 610,
            None,
            id="a long flight is the clone's own",
        ),
        pytest.param(
            sent("create", {"ids": [], "listed_at": T - WINDOW}),
            remote("71"),
            T + 30,
            T + 40,
            "310 s outside that clone's own flight (more than 300 s)",
            id="an old witness",
        ),
        pytest.param(
            sent("create", {"ids": [], **LISTED}),
            remote("71"),
            T + 30,
            T + 30 + WINDOW,
            "310 s outside",
            id="found long after",
        ),
        pytest.param(
            sent("create", {"ids": []}),
            remote("71"),
            T + 30,
            T + 40,
            "no reading of the account from just before it (none was kept)",
            id="a witness of an older voicectl",
        ),
        pytest.param(
            sent("create", None), remote("71"), T + 30, T + 40, "none was kept", id="no witness"
        ),
        pytest.param(
            sent("retrain", {"absent": True}),
            remote("71", left=6),
            T + 30,
            T + 40,
            "the voice was not on the list",
            id="a retrain of a voice not listed",
        ),
        pytest.param(
            sent("retrain", {"update_time": T - 100, "available_training_times": 7, **LISTED}),
            remote("71", left=6),
            T + 30,
            T + 40,
            None,
            id="a retrain that used one training",
        ),
        pytest.param(
            sent("retrain", {"update_time": T - 100, "available_training_times": 7, **LISTED}),
            remote("71", left=5),
            T + 30,
            T + 40,
            "used 2 trainings since",
            id="two trainings",
        ),
        pytest.param(
            sent("retrain", {"update_time": T - 100, "available_training_times": 7, **LISTED}),
            remote("71", left=7, updated=T),
            T + 30,
            T + 40,
            "updated since but used no training",
            id="updated without a training",
        ),
    ],
)
def test_a_found_voice_is_proven_only_with_a_witness_and_a_short_time_around_its_flight(
    pending: Pending, found: RemoteVoice, ended: float, read_at: float, why: str | None
) -> None:
    reason = unproven(pending, found, read_at, ended)
    if why is None:
        assert reason is None
    else:
        assert reason is not None and why in reason


def test_the_witness_kept_in_the_journal_is_read_back(tmp_path: Path) -> None:
    base = state_io.save(tmp_path / "s.json", state_io.new_state())
    log = Journal.begin(journal_path(tmp_path / "s.json"), base, "2027-01-15T08:00:00Z")
    log.pending(change("create"), "2027-01-15T08:00:00Z", T, {"ids": ["70"]})
    log.close()
    replayed = replay(journal_path(tmp_path / "s.json"), base)
    assert replayed is not None and replayed.pending[0].before == {"ids": ["70"]}


def test_replay_rebuilds_completed_clones_and_lists_the_unresolved(tmp_path: Path) -> None:
    base = state_io.save(tmp_path / "s.json", state_io.new_state())
    log = Journal.begin(journal_path(tmp_path / "s.json"), base, "2027-01-15T08:00:00Z")
    done = log.pending(change("create"), "2027-01-15T08:00:00Z", T)
    log.done(done, "2027-01-15T08:00:01Z", "7400000000000000001", "LOGID")
    log.pending(change("create"), "2027-01-15T08:00:02Z", T + 2)
    log.close()
    replayed = replay(journal_path(tmp_path / "s.json"), base)
    assert replayed is not None
    assert replayed.state.voices["narrator"].voice_id == "7400000000000000001"
    assert [p.seq for p in replayed.pending] == [2]


def test_a_line_torn_by_a_crash_is_ignored(tmp_path: Path) -> None:
    base = state_io.save(tmp_path / "s.json", state_io.new_state())
    path = journal_path(tmp_path / "s.json")
    log = Journal.begin(path, base, "2027-01-15T08:00:00Z")
    log.pending(change("create"), "2027-01-15T08:00:00Z", T)
    log.close()
    with open(path, "ab") as handle:
        handle.write(b'{"type": "done", "seq": 1, "voi')
    replayed = replay(path, base)
    assert replayed is not None and [p.seq for p in replayed.pending] == [1]


def test_a_corrupt_line_in_the_middle_is_an_error(tmp_path: Path) -> None:
    base = state_io.save(tmp_path / "s.json", state_io.new_state())
    path = journal_path(tmp_path / "s.json")
    begin = json.dumps({"type": "begin", "lineage": base.lineage, "serial": base.serial})
    path.write_text(begin + "\nnot json\n{}\n")
    with pytest.raises(StateError, match="corrupt"):
        replay(path, base)


def test_a_journal_already_folded_is_stale(tmp_path: Path) -> None:
    base = state_io.save(tmp_path / "s.json", state_io.new_state())
    log = Journal.begin(journal_path(tmp_path / "s.json"), base, "2027-01-15T08:00:00Z")
    log.close()
    newer = state_io.save(tmp_path / "s.json", base)
    replayed = replay(journal_path(tmp_path / "s.json"), newer)
    assert replayed is not None and replayed.stale


def test_a_journal_of_another_state_is_refused(tmp_path: Path) -> None:
    base = state_io.save(tmp_path / "s.json", state_io.new_state())
    log = Journal.begin(journal_path(tmp_path / "s.json"), base, "2027-01-15T08:00:00Z")
    log.close()
    other = dataclasses.replace(state_io.new_state(), serial=3)  # written, not new
    with pytest.raises(StateError, match=r"another state .*It records no clone made"):
        replay(journal_path(tmp_path / "s.json"), other)
    # A new state (the file gone) is the empty state this journal began from.
    replayed = replay(journal_path(tmp_path / "s.json"), state_io.new_state())
    assert replayed is not None and replayed.state.lineage == base.lineage


def test_a_journal_under_a_newer_state_that_lacks_its_clones_is_never_buried(
    tmp_path: Path,
) -> None:
    """A `git pull` brought a state written by another clone after this one crashed."""
    base = state_io.save(tmp_path / "s.json", state_io.new_state())
    path = journal_path(tmp_path / "s.json")
    log = Journal.begin(path, base, "2027-01-15T08:00:00Z")
    seq = log.pending(change("create"), "2027-01-15T08:00:00Z", T)
    log.done(seq, "2027-01-15T08:00:01Z", "7400000000000000001")
    log.pending(change("create"), "2027-01-15T08:00:02Z", T + 2)
    log.close()
    pulled = state_io.save(tmp_path / "s.json", base)  # same lineage, a higher serial
    with pytest.raises(StateError) as caught:
        replay(path, pulled)
    assert "narrator (voice 7400000000000000001)" in caught.value.message
    assert "clones of unknown outcome: narrator" in caught.value.message
    assert path.exists()


def test_a_journal_whose_clones_the_newer_state_holds_is_stale(tmp_path: Path) -> None:
    base = state_io.save(tmp_path / "s.json", state_io.new_state())
    path = journal_path(tmp_path / "s.json")
    log = Journal.begin(path, base, "2027-01-15T08:00:00Z")
    seq = log.pending(change("create"), "2027-01-15T08:00:00Z", T)
    log.done(seq, "2027-01-15T08:00:01Z", "7400000000000000001")
    log.close()
    replayed = replay(path, base)
    assert replayed is not None
    folded = state_io.save(tmp_path / "s.json", replayed.state)  # crashed before the unlink
    again = replay(path, folded)
    assert again is not None and again.stale


def test_a_torn_last_line_is_set_aside_before_anything_is_appended(tmp_path: Path) -> None:
    """Else the next line follows the torn one, and every later run finds a corrupt journal."""
    base = state_io.save(tmp_path / "s.json", state_io.new_state())
    path = journal_path(tmp_path / "s.json")
    log = Journal.begin(path, base, "2027-01-15T08:00:00Z")
    log.pending(change("create"), "2027-01-15T08:00:00Z", T)
    log.close()
    with open(path, "ab") as handle:
        handle.write(b'{"type": "done", "seq": 1, "voi')
    again = Journal(path)
    seq = again.pending(change("retrain", "71", before=7), "2027-01-15T08:00:05Z", T + 5)
    again.close()
    replayed = replay(path, base)
    assert replayed is not None and [p.seq for p in replayed.pending] == [1, seq]
    torn = path.with_name(path.name + ".torn").read_bytes()
    assert torn == b'{"type": "done", "seq": 1, "voi\n'


def test_a_journal_write_past_a_size_limit_is_a_clear_error_and_leaves_whole_lines(
    tmp_path: Path,
) -> None:
    """`ulimit -f` (EFBIG) stands for a full disk: the part of a line written is taken back."""
    script = f"""
import resource, sys
sys.path.insert(0, {str(Path(__file__).resolve().parent.parent)!r})
from pathlib import Path
from voicectl.state import statefile as state
from voicectl.errors import StateError
from voicectl.state.journal import Journal, journal_path
from tests.test_reconcile import change, T
base = state.save(Path({str(tmp_path / "s.json")!r}), state.new_state())
log = Journal.begin(journal_path(Path({str(tmp_path / "s.json")!r})), base, "at")
resource.setrlimit(resource.RLIMIT_FSIZE, (6000, 6000))
try:
    for i in range(100):
        log.pending(change("create"), "at", T + i)
except StateError as exc:
    print("ERROR", exc.message)
"""
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert "ERROR cannot write the apply journal" in result.stdout, result.stderr
    assert "was not sent" in result.stdout
    data = journal_path(tmp_path / "s.json").read_bytes()
    assert data.endswith(b"\n") and all(json.loads(line) for line in data.splitlines())


def test_a_journal_over_an_older_state_is_refused_not_folded(tmp_path: Path) -> None:
    """An older state checked out over a live journal would lose what lies between."""
    base = state_io.new_state()
    for _ in range(3):
        base = state_io.save(tmp_path / "s.json", base)
    path = journal_path(tmp_path / "s.json")
    log = Journal.begin(path, base, "2027-01-15T08:00:00Z")
    log.pending(change("create"), "2027-01-15T08:00:00Z", T)
    log.close()
    older = dataclasses.replace(base, serial=base.serial - 2)
    with pytest.raises(StateError, match="an older state was checked out"):
        replay(path, older)


def test_a_last_line_that_lost_only_its_newline_is_kept(tmp_path: Path) -> None:
    base = state_io.save(tmp_path / "s.json", state_io.new_state())
    path = journal_path(tmp_path / "s.json")
    log = Journal.begin(path, base, "2027-01-15T08:00:00Z")
    seq = log.pending(change("create"), "2027-01-15T08:00:00Z", T)
    log.close()
    line = json.dumps(
        {
            "type": "done",
            "seq": seq,
            "at": "2027-01-15T08:00:01Z",
            "voice_id": "7400000000000000001",
        }
    )
    with open(path, "ab") as handle:
        handle.write(line.encode())  # whole, but its newline never reached the disk
    Journal(path).close()
    replayed = replay(path, base)
    assert replayed is not None and replayed.pending == []
    assert replayed.state.voices["narrator"].voice_id == "7400000000000000001"
    assert not path.with_name(path.name + ".torn").exists()


def test_a_newer_state_that_imported_the_journal_s_voice_sets_the_journal_aside(
    tmp_path: Path,
) -> None:
    base = state_io.save(tmp_path / "s.json", state_io.new_state())
    path = journal_path(tmp_path / "s.json")
    log = Journal.begin(path, base, "2027-01-15T08:00:00Z")
    seq = log.pending(change("create"), "2027-01-15T08:00:00Z", T)
    log.done(seq, "2027-01-15T08:00:01Z", "7400000000000000001")
    log.close()
    replayed = replay(path, base)
    assert replayed is not None
    imported = dataclasses.replace(replayed.state, takes={})  # held, its take not indexed
    newer = state_io.save(tmp_path / "s.json", imported)
    again = replay(path, newer)
    assert again is not None and again.stale
