"""The contract every state store passes (as Terraform tests each backend with one shared
client and lock suite): the file store today; the PostgreSQL store will join the
``store`` fixture's parameters."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from tests.pgcluster import Cluster
from voicectl.errors import StaleWrite, StateError
from voicectl.model import State
from voicectl.state.pgstore import PgStore
from voicectl.state.statefile import new_state
from voicectl.state.store import FileStore, StateStore

Maker = Callable[[str], StateStore]


@pytest.fixture(params=["file", "pg"])
def make(request: pytest.FixtureRequest, tmp_path: Path) -> Maker:
    """Stores of one kind; ``make(name)`` twice gives two handles on one state, as two
    processes (or two machines) would have."""

    def file_store(name: str) -> StateStore:
        root = tmp_path / name
        (root / "state").mkdir(parents=True, exist_ok=True)
        return FileStore(root / "state" / "voicectl.state.json", "state", root)

    if request.param == "file":
        return file_store
    cluster: Cluster = request.getfixturevalue("pg_cluster")
    schema: str = request.getfixturevalue("pg_schema")
    return lambda name: PgStore(cluster.conninfo(), schema, name)


def _voiceless(serial: int = 0, lineage: str | None = None) -> State:
    base = new_state()
    return replace(base, serial=serial, lineage=lineage or base.lineage)


def test_a_new_store_holds_nothing_and_takes_a_first_state(make: Maker) -> None:
    store = make("a")
    assert store.read() is None
    first = store.write(_voiceless(), base=None)
    assert first.serial == 1 and store.read() == first


def test_a_write_from_the_state_stored_bumps_its_serial(make: Maker) -> None:
    store = make("a")
    first = store.write(_voiceless(), base=None)
    second = store.write(first, base=first)
    assert second.serial == 2 and second.lineage == first.lineage and store.read() == second


def test_a_write_from_a_stale_state_is_refused_and_writes_nothing(make: Maker) -> None:
    one, two = make("a"), make("a")  # two handles, one state
    first = one.write(_voiceless(), base=None)
    read_by_two = two.read()
    second = one.write(first, base=first)
    with pytest.raises(StaleWrite, match="serial 2 stored, 1 read"):
        two.write(first, base=read_by_two)
    assert one.read() == second


def test_a_write_over_another_lineage_is_refused(make: Maker) -> None:
    store = make("a")
    first = store.write(_voiceless(), base=None)
    other = _voiceless(serial=first.serial)  # a state of another repository, same serial
    with pytest.raises(StaleWrite, match="another lineage"):
        store.write(other, base=other)
    assert store.read() == first


def test_a_first_write_is_refused_when_a_state_appeared_meanwhile(make: Maker) -> None:
    one, two = make("a"), make("a")
    assert one.read() is None and two.read() is None
    written = one.write(_voiceless(), base=None)
    with pytest.raises(StaleWrite, match="written since"):
        two.write(_voiceless(), base=None)
    assert two.read() == written


def test_one_holder_at_a_time_named_to_the_next(make: Maker) -> None:
    one, two = make("a"), make("a")
    said: list[str] = []
    with one.locked("voicectl apply", said.append):
        holder = two.holder()
        assert holder is not None and holder.get("command") == "voicectl apply"
        with (
            pytest.raises(StateError, match="voicectl apply"),
            two.locked("voicectl refresh", said.append),
        ):
            pass
    assert two.holder() is None
    with two.locked("voicectl refresh", said.append):  # free once released
        pass


def test_a_held_lock_is_waited_for_within_the_timeout(make: Maker) -> None:
    one, two = make("a"), make("a")
    released = threading.Event()
    said: list[str] = []

    def hold() -> None:
        with one.locked("voicectl apply", said.append):
            released.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        while two.holder() is None:
            threading.Event().wait(0.01)
        threading.Timer(0.3, released.set).start()
        with two.locked("voicectl plan", said.append, timeout=10):
            assert two.holder() is not None
    finally:
        released.set()
        holder.join()
    assert any("waiting" in line for line in said)


def test_every_write_is_a_version(make: Maker) -> None:
    store = make("a")
    first = store.write(_voiceless(), base=None)
    second = store.write(first, base=first)
    versions = store.versions()
    assert [(v.serial, v.lineage) for v in versions] == [(1, first.lineage), (2, second.lineage)]
    assert all(len(v.sha256) == 64 and v.written_at for v in versions)


def test_apply_and_the_state_commands_write_through_the_store(tmp_path: Path, run, coze) -> None:  # type: ignore[no-untyped-def]
    """Every write of the state is the store's: the versions show apply's one write (its
    fold, Coze's facts in it) and a `state mv`, in order."""
    from tests.conftest import VoiceRepo

    repo = VoiceRepo(tmp_path / "repo")
    repo.declare({"a": repo.voice("a")})
    assert run(repo.root, "apply", "--auto-approve", env=coze.env()).exit_code == 0
    assert run(repo.root, "state", "mv", "a", "b").exit_code == 0
    home = FileStore(repo.root / "state" / "voicectl.state.json", "state", repo.root)
    assert [v.serial for v in home.versions()] == [1, 2]
    assert home.read() is not None and home.read().serial == 2  # type: ignore[union-attr]


def test_what_a_write_returns_is_what_a_read_gives_back(make: Maker) -> None:
    """Orphans are kept in the file's order: the state returned by a write can be the
    base of the next one (a fold, then a `state mv`, say)."""
    from tests.test_planner import rec

    store = make("a")
    first = store.write(_voiceless(), base=None)
    late, early = rec("z", 2), rec("y", 1)  # appended against the file's order
    orphans = (
        replace(late, orphaned_at="2026-01-01T00:00:00Z"),
        replace(early, orphaned_at="2026-01-01T00:00:00Z"),
    )
    second = store.write(replace(first, orphans=orphans), base=first)
    assert second == store.read()
    assert store.write(second, base=second).serial == 3


def test_a_lineage_from_the_file_is_never_part_of_a_path(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    (root / "state").mkdir(parents=True)
    store = FileStore(root / "state" / "voicectl.state.json", "state", root)
    store.write(replace(_voiceless(), lineage="../../../escaped/x"), base=None)
    assert not (tmp_path / "escaped").exists()
    assert [v.serial for v in store.versions()] == [1]


def test_a_hostile_history_is_ignored_never_followed_or_waited_on(tmp_path: Path) -> None:
    import os

    root = tmp_path / "repo"
    (root / "state").mkdir(parents=True)
    store = FileStore(root / "state" / "voicectl.state.json", "state", root)
    store.write(_voiceless(), base=None)
    history = root / ".voicectl" / "state-versions"
    os.mkfifo(history / "zz-fifo.json")  # would block a plain open
    (history / "zz-link.json").symlink_to("/etc/hostname")
    (history / "zz-bad.json").write_text(
        '{"serial": "x", "lineage": 1, "written_at": 2, "sha256": 3}'
    )
    assert [v.serial for v in store.versions()] == [1]


def test_a_validity_cache_a_repository_carries_vouches_for_nothing(tmp_path: Path) -> None:
    """The cache that lets a state skip its schema check is keyed with this machine's
    secret: one written by anyone else (a file a pull request adds) is not believed."""
    import hashlib
    import json

    from voicectl import __version__
    from voicectl.files import schemas
    from voicectl.state.statefile import dumps, load

    path = tmp_path / "state.json"
    data = json.loads(dumps(_voiceless(serial=1)))
    data["lineage"] = "../../x"  # the schema refuses it
    raw = json.dumps(data).encode()
    path.write_bytes(raw)
    forged = {
        "state": hashlib.sha256(raw).hexdigest(),
        "schema": schemas.digest("state"),
        "voicectl": __version__,
    }
    checked = tmp_path / "checked.json"
    checked.write_bytes(json.dumps(forged, sort_keys=True).encode())
    with pytest.raises(StateError, match="lineage"):
        load(path, "state", checked)
