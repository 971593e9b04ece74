"""The state in PostgreSQL (``backend: pg``), on a real server (tests/pgcluster.py): the
configuration, what is stored, the lock a session holds, and runners side by side. The
contract every store passes is in tests/test_store.py."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg
import pytest

from tests.conftest import Coze, VoiceRepo
from tests.pgcluster import Cluster
from voicectl.errors import StaleWrite, StateError
from voicectl.state import statefile
from voicectl.state.pgstore import PgStore

VOICECTL = [sys.executable, "-m", "voicectl"]
GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid"]


def voicectl(root: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """voicectl run in a process of its own, as a CI runner runs it."""
    return subprocess.run(
        [*VOICECTL, "-C", str(root), *args], env=env, capture_output=True, text=True
    )


def on_pg(repo: VoiceRepo, cluster: Cluster, schema: str, **pg: str) -> None:
    repo.write_config(backend={"pg": {"conn_str": cluster.conninfo(), "schema": schema, **pg}})


def stored_row(cluster: Cluster, schema: str, workspace: str = "default") -> tuple[str, ...]:
    with psycopg.connect(cluster.conninfo()) as conn:
        row = conn.execute(
            f'SELECT lineage, serial, sha256, body, written_by FROM "{schema}".states '
            "WHERE workspace = %s",
            [workspace],
        ).fetchone()
    assert row is not None
    return tuple(str(value) for value in row)


# --- a repository on PostgreSQL ----------------------------------------------------------


def test_a_repository_on_postgresql_applies_plans_and_keeps_every_version(
    repo: VoiceRepo, coze: Coze, run, pg_cluster: Cluster, pg_schema: str
) -> None:
    on_pg(repo, pg_cluster, pg_schema)
    repo.declare({"a": repo.voice("a"), "b": repo.voice("b", freq=520)})
    applied = run(repo.root, "apply", "--auto-approve", env=coze.env())
    assert applied.exit_code == 0, applied.output
    assert not (repo.root / "state" / "voicectl.state.json").exists()  # none on the runner
    lineage, serial, digest, body, by = stored_row(pg_cluster, pg_schema)
    assert serial == "1" and hashlib.sha256(body.encode()).hexdigest() == digest
    assert body.encode() == statefile.dumps(statefile.parse(body.encode(), "x"))  # canonical
    assert "@" in by
    plan = run(repo.root, "plan", "--detailed-exitcode", env=coze.env())
    assert plan.exit_code == 0 and "No changes" in plan.output, plan.output
    assert run(repo.root, "state", "mv", "b", "c").exit_code == 0
    listed = json.loads(run(repo.root, "state", "list", "--json").stdout)
    assert sorted(v["address"] for v in listed["voices"]) == ["a", "c"]
    versions = json.loads(run(repo.root, "state", "versions", "--json").stdout)["versions"]
    assert [v["serial"] for v in versions] == [1, 2]
    assert all(v["lineage"] == lineage and v["written_by"] == by for v in versions)
    first = run(repo.root, "state", "pull", "--serial", "1")
    assert first.exit_code == 0
    assert hashlib.sha256(first.stdout_bytes).hexdigest() == versions[0]["sha256"]
    latest = run(repo.root, "state", "pull")
    assert json.loads(latest.stdout)["serial"] == 2
    missing = run(repo.root, "state", "pull", "--serial", "9")
    assert missing.exit_code == 1 and "no version with serial 9" in missing.output
    assert len(coze.ledger()) == 2


def test_each_version_records_the_commit_checked_out(
    repo: VoiceRepo, coze: Coze, run, pg_cluster: Cluster, pg_schema: str
) -> None:
    on_pg(repo, pg_cluster, pg_schema)
    repo.declare({"a": repo.voice("a")})
    for args in (["init", "-q", "-b", "main"], ["add", "-A"]):
        subprocess.run(["git", "-C", str(repo.root), *args], check=True)
    subprocess.run(
        [*GIT, "-C", str(repo.root), "commit", "-q", "-m", "voices"],
        check=True,
    )
    head = subprocess.run(
        ["git", "-C", str(repo.root), "rev-parse", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    assert run(repo.root, "apply", "--auto-approve", env=coze.env()).exit_code == 0
    (version,) = json.loads(run(repo.root, "state", "versions", "--json").stdout)["versions"]
    assert version["git_commit"] == head


def test_a_damaged_states_row_is_refused_with_advice_for_postgresql(
    repo: VoiceRepo, coze: Coze, run, pg_cluster: Cluster, pg_schema: str
) -> None:
    """A states row someone edited into what no state is: one clear error, advice that
    fits a database (not a `git checkout`), and the versions kept still readable."""
    on_pg(repo, pg_cluster, pg_schema)
    repo.declare({"a": repo.voice("a")})
    assert run(repo.root, "apply", "--auto-approve", env=coze.env()).exit_code == 0
    pg_cluster.execute(
        f'UPDATE "{pg_schema}".states SET body = \'{{"serial": 1\'',
        f'UPDATE "{pg_schema}".states SET sha256 = '
        "encode(sha256(convert_to(body, 'UTF8')), 'hex')",
    )
    plan = run(repo.root, "plan", env=coze.env())
    assert plan.exit_code == 1 and "Traceback" not in plan.output
    assert "the state is not valid JSON" in plan.output, plan.output
    assert "state versions" in plan.output and "git checkout" not in plan.output
    versions = json.loads(run(repo.root, "state", "versions", "--json").stdout)["versions"]
    kept = run(repo.root, "state", "pull", "--serial", str(versions[-1]["serial"]))
    assert kept.exit_code == 0 and json.loads(kept.stdout)["serial"] == 1


def test_a_states_row_put_back_by_hand_goes_on_after_the_last_version(
    repo: VoiceRepo, coze: Coze, run, pg_cluster: Cluster, pg_schema: str
) -> None:
    """Version 1 put back in the row (as the advice says): the next apply writes
    version 3, not a second version 2; a row whose sha256 is not its text's is refused
    before anything is cloned."""
    on_pg(repo, pg_cluster, pg_schema)
    repo.declare({"a": repo.voice("a")})
    assert run(repo.root, "apply", "--auto-approve", env=coze.env()).exit_code == 0
    assert run(repo.root, "state", "mv", "a", "b").exit_code == 0
    table = f'"{pg_schema}"'
    pg_cluster.execute(
        f"UPDATE {table}.states s SET body = v.body, sha256 = v.sha256, serial = 1 "
        f"FROM {table}.state_versions v WHERE v.serial = 1"
    )
    repo.declare({"a": repo.voice("a"), "c": repo.voice("c", freq=520)})
    applied = run(repo.root, "apply", "--auto-approve", env=coze.env())
    assert applied.exit_code == 0, applied.output
    versions = json.loads(run(repo.root, "state", "versions", "--json").stdout)["versions"]
    assert [v["serial"] for v in versions] == [1, 2, 3]
    assert json.loads(stored_row(pg_cluster, pg_schema)[3])["serial"] == 3
    pg_cluster.execute(f"UPDATE {table}.states SET sha256 = repeat('0', 64)")
    repo.declare({"a": repo.voice("a"), "c": repo.voice("c", freq=520), "d": repo.voice("d")})
    refused = run(repo.root, "apply", "--auto-approve", env=coze.env())
    assert refused.exit_code == 1 and "sha256 is not that of its text" in refused.output
    assert len(coze.ledger()) == 2


def test_versions_of_an_earlier_lineage_are_listed_and_pulled_by_it(
    repo: VoiceRepo, run, pg_cluster: Cluster, pg_schema: str
) -> None:
    """The workspace held another state before (its row replaced): `state versions`
    shows which lineage each serial 1 is of, and `state pull --lineage` reaches the old."""
    on_pg(repo, pg_cluster, pg_schema)
    store = PgStore(pg_cluster.conninfo(), pg_schema, "default")
    old = store.write(statefile.new_state(), None)
    pg_cluster.execute(f'DELETE FROM "{pg_schema}".states')
    new = store.write(statefile.new_state(), None)
    listed = run(repo.root, "state", "versions")
    assert listed.exit_code == 0, listed.output
    assert "LINEAGE" in listed.output
    assert old.lineage[:8] in listed.output and new.lineage[:8] in listed.output
    current = run(repo.root, "state", "pull", "--serial", "1")
    assert json.loads(current.stdout)["lineage"] == new.lineage
    earlier = run(repo.root, "state", "pull", "--serial", "1", "--lineage", old.lineage[:8])
    assert earlier.exit_code == 0, earlier.output
    assert json.loads(earlier.stdout)["lineage"] == old.lineage
    unknown = run(repo.root, "state", "pull", "--serial", "1", "--lineage", "zz")
    assert unknown.exit_code == 1 and "names none of the lineages" in unknown.output


def test_a_runner_keeps_the_state_it_read_and_fetches_only_a_newer_one(
    tmp_path: Path, coze: Coze, run, pg_cluster: Cluster, pg_schema: str
) -> None:
    """The text of the state a runner last read or wrote is kept in its cache and used
    while the server names the same sha256; a state another runner wrote is fetched."""
    one, two = VoiceRepo(tmp_path / "one"), VoiceRepo(tmp_path / "two")
    for repo in (one, two):
        on_pg(repo, pg_cluster, pg_schema)
        repo.declare({"a": repo.voice("a")})
    assert run(one.root, "apply", "--auto-approve", env=coze.env()).exit_code == 0
    (kept,) = (one.root / ".voicectl" / "cache").glob("pg-state-*.json")
    assert kept.read_bytes().decode() == stored_row(pg_cluster, pg_schema)[3]
    two.declare({"a": two.voice("a"), "b": two.voice("b", freq=520)})
    assert run(two.root, "apply", "--auto-approve", env=coze.env()).exit_code == 0
    listed = json.loads(run(one.root, "state", "list", "--json").stdout)
    assert sorted(v["address"] for v in listed["voices"]) == ["a", "b"]
    assert kept.read_bytes().decode() == stored_row(pg_cluster, pg_schema)[3]


@pytest.mark.parametrize(
    "conn_str",
    [
        "postgresql://voicectl:hunter2@db.example.internal/voices",
        "postgresql://db.example.internal/voices?password=hunter2",
        "host=db.example.internal password=hunter2 dbname=voices",
        "host=db PASSWORD = 'hunter2'",
        "host=db dbname='voices'password=hunter2",
        "host=db sslpassword=hunter2",
        "postgresql://alice@db/voices?application_name=x#&password=hunter2",
        "postgresql://alice#:hunter2@db/voices",
    ],
    ids=[
        "uri-userinfo",
        "uri-query",
        "keywords",
        "keywords-spaced",
        "after-a-quote",
        "ssl-key",
        "after-a-fragment-sign",
        "user-with-a-hash",
    ],
)
def test_a_password_in_the_repository_is_refused(repo: VoiceRepo, run, conn_str: str) -> None:
    repo.write_config(backend={"pg": {"conn_str": conn_str}})
    repo.declare({"a": repo.voice("a")})
    result = run(repo.root, "plan")
    assert result.exit_code == 1, result.output
    assert "voicectl.yaml:" in result.output and "backend.pg.conn_str" in result.output
    assert "holds a password" in result.output and "PGPASSWORD" in result.output
    assert "hunter2" not in result.output and "Traceback" not in result.output


def test_the_environment_overrides_the_connection_string(
    repo: VoiceRepo, run, pg_cluster: Cluster, pg_schema: str
) -> None:
    """voicectl.yaml names a server nobody runs; VOICECTL_PG_CONN_STR, a CI secret, the
    real one. libpq's own variables fill in what neither says."""
    repo.write_config(
        backend={"pg": {"conn_str": "host=127.0.0.1 port=9 connect_timeout=2", "schema": pg_schema}}
    )
    repo.declare({"a": repo.voice("a")})
    wrong = run(repo.root, "state", "versions")
    assert wrong.exit_code == 1 and "cannot connect" in wrong.output, wrong.output
    env = {"VOICECTL_PG_CONN_STR": f"host=127.0.0.1 port={pg_cluster.port}", "PGUSER": "postgres"}
    right = run(repo.root, "state", "versions", env=env)
    assert right.exit_code == 0 and "0 version(s)" in right.output, right.output


def test_without_the_driver_the_extra_is_named(repo: VoiceRepo) -> None:
    repo.write_config(backend={"pg": {}})
    repo.declare({"a": repo.voice("a")})
    code = (
        "import sys; sys.modules['psycopg'] = None\n"
        "from voicectl.cli import main; main(['-C', sys.argv[1], 'plan'])"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(repo.root)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1, done.stderr
    assert "pip install 'voicectl[pg]'" in done.stderr and "Traceback" not in done.stderr


# --- what is stored -----------------------------------------------------------------------


def test_a_role_without_create_works_in_a_schema_made_for_it(
    pg_cluster: Cluster, pg_schema: str
) -> None:
    role = f"r_{pg_schema}"
    pg_cluster.execute(
        f"CREATE ROLE {role} LOGIN",
        f"CREATE SCHEMA {pg_schema}",
        f"GRANT USAGE, CREATE ON SCHEMA {pg_schema} TO {role}",
    )
    store = PgStore(pg_cluster.conninfo(user=role), pg_schema, "w")
    written = store.write(statefile.new_state(), base=None)
    assert store.read() == written
    elsewhere = PgStore(pg_cluster.conninfo(user=role), f"{pg_schema}_x", "w")
    assert elsewhere.read() is None and elsewhere.versions() == []  # a read makes nothing
    with pytest.raises(StateError, match=r"may not make voicectl's tables.*CREATE"):
        elsewhere.write(statefile.new_state(), base=None)


def test_first_runners_make_the_tables_side_by_side(pg_cluster: Cluster, pg_schema: str) -> None:
    errors: list[BaseException] = []

    def first() -> None:
        try:
            PgStore(pg_cluster.conninfo(), pg_schema, "w").read()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=first) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


def test_the_state_s_text_is_compressed_with_lz4_where_the_server_has_it(
    pg_cluster: Cluster, pg_schema: str
) -> None:
    """Debian's PostgreSQL 15 is built with lz4: both tables holding a state's text use
    it, and a state reads back whole through it."""
    store = PgStore(pg_cluster.conninfo(), pg_schema, "w")
    written = store.write(statefile.new_state(), base=None)
    with psycopg.connect(pg_cluster.conninfo()) as conn:
        kinds = conn.execute(
            "SELECT attrelid::regclass::text, attcompression FROM pg_attribute "
            "WHERE attname = 'body' AND attrelid IN (%s::regclass, %s::regclass)",
            [f"{pg_schema}.states", f"{pg_schema}.state_versions"],
        ).fetchall()
    assert sorted(kind for _, kind in kinds) == ["l", "l"]
    assert PgStore(pg_cluster.conninfo(), pg_schema, "w").read() == written


def test_of_writers_racing_from_one_state_exactly_one_writes(
    pg_cluster: Cluster, pg_schema: str
) -> None:
    base = PgStore(pg_cluster.conninfo(), pg_schema, "w").write(statefile.new_state(), None)
    outcomes: list[str] = []
    start = threading.Barrier(8)

    def writer(n: int) -> None:
        store = PgStore(pg_cluster.conninfo(), pg_schema, "w")
        start.wait()
        try:
            store.write(base, base=base)
            outcomes.append("written")
        except StaleWrite:
            outcomes.append("refused")

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["refused"] * 7 + ["written"]
    versions = PgStore(pg_cluster.conninfo(), pg_schema, "w").versions()
    assert [v.serial for v in versions] == [1, 2]


def test_workspaces_and_schemas_keep_their_states_apart(
    pg_cluster: Cluster, pg_schema: str
) -> None:
    one = PgStore(pg_cluster.conninfo(), pg_schema, "one")
    two = PgStore(pg_cluster.conninfo(), pg_schema, "two")
    other = PgStore(pg_cluster.conninfo(), f"{pg_schema}_b", "one")
    written = one.write(statefile.new_state(), None)
    assert two.read() is None and other.read() is None and one.read() == written
    with (
        one.locked("voicectl apply", print),
        two.locked("voicectl apply", print),
        other.locked("voicectl apply", print),
    ):
        pass  # another workspace's, another schema's lock: free


# --- the lock ------------------------------------------------------------------------------


HOLD = """
import sys, time
from voicectl.state.pgstore import PgStore
store = PgStore(sys.argv[1], sys.argv[2], "w")
with store.locked("voicectl apply", print):
    print("HELD", flush=True)
    time.sleep(120)
"""


def _holding(conninfo: str, schema: str) -> subprocess.Popen[str]:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, conninfo, schema], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "HELD"
    return holder


def test_a_holder_killed_frees_the_lock_for_the_next_runner_at_once(
    pg_cluster: Cluster, pg_schema: str
) -> None:
    holder = _holding(pg_cluster.conninfo(), pg_schema)
    store = PgStore(pg_cluster.conninfo(), pg_schema, "w")
    try:
        info = store.holder()
        assert info is not None and info["pid"] == holder.pid
        assert info["command"] == "voicectl apply" and info["id"] and info["host"]
        with (
            pytest.raises(StateError, match=f"pid {holder.pid}"),
            store.locked("voicectl apply", print),
        ):
            pass
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
        assert holder.stdout is not None
        holder.stdout.close()
    deadline = time.monotonic() + 30  # the server ends the killed holder's session
    while store.holder() is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    said: list[str] = []
    with store.locked("voicectl apply", said.append):  # free: no waiting for it
        pass
    assert any("previous holder of the lock is gone" in line for line in said)


def test_force_unlock_ends_the_holders_session_where_the_role_may(
    repo: VoiceRepo, run, pg_cluster: Cluster, pg_schema: str
) -> None:
    on_pg(repo, pg_cluster, pg_schema, workspace="w")
    repo.declare({"a": repo.voice("a")})
    holder = _holding(pg_cluster.conninfo(), pg_schema)
    try:
        info = PgStore(pg_cluster.conninfo(), pg_schema, "w").holder()
        assert info is not None
        weak = f"r_{pg_schema}"
        pg_cluster.execute(
            f"CREATE ROLE {weak} LOGIN", f"GRANT USAGE ON SCHEMA {pg_schema} TO {weak}"
        )
        pg_cluster.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA {pg_schema} TO {weak}")
        as_weak = {"VOICECTL_PG_CONN_STR": pg_cluster.conninfo(user=weak)}
        refused = run(repo.root, "force-unlock", info["id"], "--force", env=as_weak)
        assert refused.exit_code == 1 and "pg_signal_backend" in refused.output, refused.output
        wrong = run(repo.root, "force-unlock", "0000", "--force")
        assert wrong.exit_code == 1 and "nothing was done" in wrong.output
        ended = run(repo.root, "force-unlock", info["id"], "--force")
        assert ended.exit_code == 0 and "Ended the database session" in ended.output
        store = PgStore(pg_cluster.conninfo(), pg_schema, "w")
        with store.locked("voicectl apply", print, timeout=10):
            pass  # free for the next runner, though the holder's process lives on
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
        assert holder.stdout is not None
        holder.stdout.close()
    assert PgStore(pg_cluster.conninfo(), pg_schema, "w").holder() is None


# --- runners side by side ------------------------------------------------------------------


def test_two_runners_applying_at_once_clone_each_voice_once(
    tmp_path: Path, coze: Coze, pg_cluster: Cluster, pg_schema: str
) -> None:
    """Two clones of one repository, one workspace: one applies, the other waits for
    the lock, then finds nothing left to do."""
    coze.faults(latency_ms=300)
    runners = []
    for name in ("one", "two"):
        repo = VoiceRepo(tmp_path / name)
        on_pg(repo, pg_cluster, pg_schema)
        repo.declare({f"v{i}": repo.voice(f"v{i}", freq=300 + 20 * i) for i in range(4)})
        runners.append(repo)
    env = {**os.environ, **coze.env()}
    procs = [
        subprocess.Popen(
            [*VOICECTL, "-C", str(r.root), "apply", "--auto-approve", "--lock-timeout", "120"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for r in runners
    ]
    outputs = [p.communicate(timeout=180) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    said = "".join(out + err for out, err in outputs)
    assert "waiting up to 120 s for the lock" in said
    creates = [c for c in coze.ledger() if c["kind"] == "create"]
    assert len(creates) == 4 and len({c["voice_id"] for c in creates}) == 4
    stored = json.loads(stored_row(pg_cluster, pg_schema)[3])
    assert {r["voice_id"] for r in stored["voices"].values()} == {c["voice_id"] for c in creates}


def test_a_holder_whose_lock_was_taken_writes_nothing(pg_cluster: Cluster, pg_schema: str) -> None:
    """`force-unlock` from elsewhere ended this holder's session: its next write is
    refused, since another runner may hold the lock by now."""
    store = PgStore(pg_cluster.conninfo(), pg_schema, "w")
    first = store.write(statefile.new_state(), None)
    with store.locked("voicectl apply", print):
        pg_cluster.execute(
            f"SELECT pg_terminate_backend(backend_pid) FROM {pg_schema}.locks WHERE workspace = 'w'"
        )
        with pytest.raises(StateError, match="lock was taken from it"):
            store.write(first, base=first)
    assert store.read() == first


@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
def test_an_apply_whose_session_ends_counts_every_clone_it_made(
    repo: VoiceRepo, coze: Coze, pg_cluster: Cluster, pg_schema: str, as_json: bool
) -> None:
    """The lock's session ended mid-apply (a restart, a force-unlock): the apply stops,
    and its summary still names every clone it made and what they cost (each is paid),
    as do its JSON events (a voice_complete for each clone made; no voice_start for one
    never sent); the next apply records them, each cloned once."""
    on_pg(repo, pg_cluster, pg_schema)
    repo.declare({f"v{i}": repo.voice(f"v{i}", freq=300 + 20 * i) for i in range(6)})
    coze.faults(latency_ms=400)
    env = {**os.environ, **coze.env(), "VOICECTL_UNANSWERED_WAIT": "1"}
    json_flag = ["--json"] if as_json else []
    runner = subprocess.Popen(
        [
            *VOICECTL,
            "-C",
            str(repo.root),
            "apply",
            "--auto-approve",
            "--parallelism",
            "2",
            *json_flag,
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while len(coze.ledger()) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    pg_cluster.execute(f'SELECT pg_terminate_backend(backend_pid) FROM "{pg_schema}".locks')
    out, err = runner.communicate(timeout=60)
    made = [c["voice_id"] for c in coze.ledger() if c["kind"] == "create"]
    assert runner.returncode == 1 and 2 <= len(made) < 6, out + err
    if as_json:
        events = [json.loads(line) for line in out.splitlines()]
        (summary,) = [e for e in events if e["event"] == "summary"]
        assert summary["clones_spent"] == len(made) and summary["recorded"] is False
        complete = [e for e in events if e["event"] == "voice_complete"]
        assert sorted(e["voice_id"] for e in complete) == sorted(made)
        started = {e["address"] for e in events if e["event"] == "voice_start"}
        ended = {e["address"] for e in events if e["event"] in ("voice_complete", "voice_error")}
        assert started == ended, events
    else:
        assert f"Clones spent: {len(made)}. Spent {138 * len(made)} CNY" in out, out + err
        for voice_id in made:
            assert voice_id in out
    coze.faults(latency_ms=0)
    time.sleep(1)  # a clone cut by the session's end is out of Coze's hands
    again = voicectl(repo.root, "apply", "--auto-approve", env=env)
    assert again.returncode == 0, again.stderr + again.stdout
    creates = [c["voice_id"] for c in coze.ledger() if c["kind"] == "create"]
    assert len(creates) == 6 == len(set(creates))


def test_a_final_write_the_server_cancels_is_said_with_what_was_spent(
    repo: VoiceRepo, coze: Coze, run, pg_cluster: Cluster, pg_schema: str
) -> None:
    """The state write at an apply's end cancelled by the server (a lock timeout, here):
    one clear error, exit 1, a summary of the clones made; the next apply records them."""
    on_pg(repo, pg_cluster, pg_schema)
    repo.declare({"v0": repo.voice("v0", freq=300)})
    assert run(repo.root, "apply", "--auto-approve", env=coze.env()).exit_code == 0
    repo.declare({f"v{i}": repo.voice(f"v{i}", freq=300 + 20 * i) for i in range(3)})
    pg_cluster.execute("ALTER DATABASE postgres SET lock_timeout = '1s'")
    try:
        with psycopg.connect(pg_cluster.conninfo()) as blocker:
            blocker.execute(f'SELECT 1 FROM "{pg_schema}".states FOR UPDATE')
            applied = run(repo.root, "apply", "--auto-approve", env=coze.env())
    finally:
        pg_cluster.execute("ALTER DATABASE postgres RESET lock_timeout")
    assert applied.exit_code == 1, applied.output
    assert "the state could not be written" in applied.output
    assert "Clones spent: 2. Spent 276 CNY" in applied.output
    assert "this is a bug" not in applied.output
    again = run(repo.root, "apply", "--auto-approve", env=coze.env())
    assert again.exit_code == 0, again.output
    creates = [c["voice_id"] for c in coze.ledger() if c["kind"] == "create"]
    assert len(creates) == 3 == len(set(creates))
    assert len(json.loads(stored_row(pg_cluster, pg_schema)[3])["voices"]) == 3


def test_a_journal_row_no_apply_wrote_is_refused_before_anything_is_cloned(
    repo: VoiceRepo, coze: Coze, run, pg_cluster: Cluster, pg_schema: str
) -> None:
    """A row of the journal table that is not a journal line (a row is never torn):
    refused with where to look, not ignored until it makes a later recovery fail."""
    on_pg(repo, pg_cluster, pg_schema)
    repo.declare({"v0": repo.voice("v0", freq=300)})
    assert run(repo.root, "apply", "--auto-approve", env=coze.env()).exit_code == 0
    pg_cluster.execute(
        f"INSERT INTO \"{pg_schema}\".journal (workspace, line) VALUES ('default', 'x')"
    )
    repo.declare({f"v{i}": repo.voice(f"v{i}", freq=300 + 20 * i) for i in range(2)})
    for command in (["plan"], ["apply", "--auto-approve"]):
        refused = run(repo.root, *command, env=coze.env())
        assert refused.exit_code == 1, refused.output
        assert "of its journal is not the begin record" in refused.output
        assert "Traceback" not in refused.output
    assert len(coze.ledger()) == 1


def test_a_migration_over_a_journal_in_the_database_is_refused(
    repo: VoiceRepo, coze: Coze, run, pg_cluster: Cluster, pg_schema: str
) -> None:
    """The database keeps an interrupted apply's journal: a state file copied over it
    (with no journal of its own) would leave that journal under a newer state."""
    repo.declare({"v0": repo.voice("v0", freq=300)})
    assert run(repo.root, "apply", "--auto-approve", env=coze.env()).exit_code == 0
    on_pg(repo, pg_cluster, pg_schema)
    store = PgStore(pg_cluster.conninfo(), pg_schema, "default")
    store.journal_add(b'{"type": "begin", "lineage": "x", "serial": 0, "at": "t"}\n')
    moved = run(repo.root, "state", "migrate", "--to", "pg")
    assert moved.exit_code == 1 and "holds an interrupted apply's journal" in moved.output
    assert store.read() is None


def test_force_unlock_of_a_lock_held_without_details_says_so(
    repo: VoiceRepo, run, pg_cluster: Cluster, pg_schema: str
) -> None:
    """A session holds the lock's key but wrote no holder row: not "not locked"."""
    on_pg(repo, pg_cluster, pg_schema)
    store = PgStore(pg_cluster.conninfo(), pg_schema, "default")
    store.write(statefile.new_state(), None)
    with psycopg.connect(pg_cluster.conninfo(), autocommit=True) as holder:
        holder.execute(
            "SELECT pg_advisory_lock(hashtext(%s), hashtext(%s))",
            [f"voicectl:{pg_schema}", "default"],
        )
        forced = run(repo.root, "force-unlock", "0123abcd")
    assert forced.exit_code == 1, forced.output
    assert "has said nothing of itself" in forced.output and "pg_terminate_backend" in forced.output


@pytest.mark.parametrize(
    ("pg", "field"),
    [
        ({"schema": "Voices; DROP TABLE x"}, "backend.pg.schema"),
        ({"workspace": "prod\n"}, "backend.pg.workspace"),
        ({"conn_str": 5}, "backend.pg.conn_str"),
        ({"host": "db"}, "backend.pg"),
    ],
    ids=["schema-not-a-name", "workspace-newline", "conn-str-a-number", "unknown-field"],
)
def test_a_bad_backend_is_one_clear_error(
    repo: VoiceRepo, run, pg: dict[str, object], field: str
) -> None:
    repo.write_config(backend={"pg": pg})
    repo.declare({"a": repo.voice("a")})
    result = run(repo.root, "plan")
    assert result.exit_code == 1, result.output
    assert "voicectl.yaml:" in result.output and field in result.output
    assert "Traceback" not in result.output


# --- intents outlive the runner -------------------------------------------------------------


def _killed_mid_apply(repo: VoiceRepo, coze: Coze, clones: int) -> dict[str, str]:
    """An apply of ``repo`` SIGKILLed once Coze has ``clones`` clones in all; returns the
    environment to run voicectl with (a clone cut by the kill is out of Coze's hands 1 s on)."""
    env = {**os.environ, **coze.env(), "VOICECTL_UNANSWERED_WAIT": "1"}
    runner = subprocess.Popen(
        [*VOICECTL, "-C", str(repo.root), "apply", "--auto-approve", "--parallelism", "2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while len(coze.ledger()) < clones and time.monotonic() < deadline:
        time.sleep(0.02)
    runner.send_signal(signal.SIGKILL)
    runner.wait()
    return env


def test_a_runner_killed_mid_apply_is_recovered_by_another_runner(
    tmp_path: Path, coze: Coze, pg_cluster: Cluster, pg_schema: str
) -> None:
    """The journal lives in PostgreSQL too: runner one is SIGKILLed with clones in
    flight and its disk is gone; runner two, elsewhere, reads the intents, settles each
    on Coze's list before resending, and every voice is cloned exactly once."""
    coze.faults(latency_ms=250)
    one, two = VoiceRepo(tmp_path / "one"), VoiceRepo(tmp_path / "two")
    for repo in (one, two):
        on_pg(repo, pg_cluster, pg_schema)
        repo.declare({f"v{i}": repo.voice(f"v{i}", freq=300 + 20 * i) for i in range(8)})
    env = _killed_mid_apply(one, coze, clones=3)
    made = len(coze.ledger())
    assert 3 <= made < 8
    with psycopg.connect(pg_cluster.conninfo()) as conn:
        kept = conn.execute(f'SELECT count(*) FROM "{pg_schema}".journal').fetchone()
    assert kept is not None and kept[0] > made  # a begin, and a pending line per clone sent
    coze.faults(latency_ms=0)
    time.sleep(1)  # the clones cut by the kill are out of Coze's hands
    plan = voicectl(two.root, "plan", env=env)
    assert "an apply was interrupted" in plan.stderr, plan.stderr
    again = voicectl(two.root, "apply", "--auto-approve", env=env)
    assert again.returncode == 0, again.stderr + again.stdout
    assert "recovering an interrupted apply" in again.stderr
    creates = [c for c in coze.ledger() if c["kind"] == "create"]
    assert len(creates) == 8 and len({c["voice_id"] for c in creates}) == 8
    stored = json.loads(stored_row(pg_cluster, pg_schema)[3])
    assert {r["voice_id"] for r in stored["voices"].values()} == {c["voice_id"] for c in creates}
    with psycopg.connect(pg_cluster.conninfo()) as conn:
        left = conn.execute(f'SELECT count(*) FROM "{pg_schema}".journal').fetchone()
    assert left == (0,)  # folded, and removed with the same commit
    assert not (one.root / "state" / "voicectl.state.json").exists()


# --- moving the state ------------------------------------------------------------------------


def test_the_state_moves_to_postgresql_and_back(
    repo: VoiceRepo, coze: Coze, run, pg_cluster: Cluster, pg_schema: str
) -> None:
    """A repository that applied with the state file turns on backend.pg: its voices are
    never planned again (the file is refused until it is copied and removed), the copy
    keeps the lineage, and a copy back gives the file the newer state."""
    repo.declare({"a": repo.voice("a"), "b": repo.voice("b", freq=520)})
    assert run(repo.root, "apply", "--auto-approve", env=coze.env()).exit_code == 0
    local = json.loads((repo.root / "state" / "voicectl.state.json").read_text())
    on_pg(repo, pg_cluster, pg_schema)
    stranded = run(repo.root, "plan", env=coze.env())
    assert stranded.exit_code == 1 and "state migrate --to pg" in stranded.output
    moved = run(repo.root, "state", "migrate", "--to", "pg")
    assert moved.exit_code == 0, moved.output
    assert f"serial 1 (lineage {local['lineage']})" in moved.output and "git rm" in moved.output
    again = run(repo.root, "state", "migrate", "--to", "pg")
    assert again.exit_code == 1 and "holds serial 1 of this state already" in again.output
    (repo.root / "state" / "voicectl.state.json").unlink()  # `git rm`
    plan = run(repo.root, "plan", "--detailed-exitcode", env=coze.env())
    assert plan.exit_code == 0 and "No changes" in plan.output, plan.output
    assert run(repo.root, "state", "mv", "b", "c").exit_code == 0  # serial 2, in PostgreSQL
    back = run(repo.root, "state", "migrate", "--to", "local")
    assert back.exit_code == 0, back.output
    file = json.loads((repo.root / "state" / "voicectl.state.json").read_text())
    assert file["lineage"] == local["lineage"] and sorted(file["voices"]) == ["a", "c"]
    assert len(coze.ledger()) == 2


def test_a_migration_over_another_state_is_refused(
    tmp_path: Path, repo: VoiceRepo, coze: Coze, run, pg_cluster: Cluster, pg_schema: str
) -> None:
    other = VoiceRepo(tmp_path / "other")
    on_pg(other, pg_cluster, pg_schema)
    other.declare({"x": other.voice("x", freq=610)})
    assert run(other.root, "apply", "--auto-approve", env=coze.env()).exit_code == 0
    repo.declare({"a": repo.voice("a")})
    assert run(repo.root, "apply", "--auto-approve", env=coze.env()).exit_code == 0
    on_pg(repo, pg_cluster, pg_schema)
    refused = run(repo.root, "state", "migrate", "--to", "pg")
    assert refused.exit_code == 1 and "holds another state" in refused.output
    assert json.loads(stored_row(pg_cluster, pg_schema)[3])["voices"].keys() == {"x"}


def test_an_interrupted_apply_s_journal_moves_with_the_state(
    repo: VoiceRepo, coze: Coze, run, pg_cluster: Cluster, pg_schema: str
) -> None:
    """Killed mid-apply on the state file; migrated; the next apply, on PostgreSQL,
    recovers the clones the journal records instead of paying for them again."""
    repo.declare({"v0": repo.voice("v0", freq=300)})
    assert run(repo.root, "apply", "--auto-approve", env=coze.env()).exit_code == 0
    repo.declare({f"v{i}": repo.voice(f"v{i}", freq=300 + 20 * i) for i in range(6)})
    coze.faults(latency_ms=250)
    env = _killed_mid_apply(repo, coze, clones=3)
    coze.faults(latency_ms=0)
    assert (repo.root / "state" / "voicectl.state.json.journal").exists()
    on_pg(repo, pg_cluster, pg_schema)
    moved = run(repo.root, "state", "migrate", "--to", "pg")
    assert moved.exit_code == 0 and "with a journal of" in moved.output, moved.output
    (repo.root / "state" / "voicectl.state.json").unlink()
    assert not (repo.root / "state" / "voicectl.state.json.journal").exists()  # kept there
    time.sleep(1)
    again = voicectl(repo.root, "apply", "--auto-approve", env=env)
    assert again.returncode == 0, again.stderr
    creates = [c for c in coze.ledger() if c["kind"] == "create"]
    assert len(creates) == 6 and len({c["voice_id"] for c in creates}) == 6


@pytest.mark.parametrize("migrated", [True, False], ids=["migrated", "backend-switched"])
def test_a_first_apply_killed_on_the_state_file_is_recovered_on_postgresql(
    repo: VoiceRepo, coze: Coze, run, pg_cluster: Cluster, pg_schema: str, migrated: bool
) -> None:
    """A first apply killed before it wrote any state leaves a journal alone. Carried
    over by `state migrate` (or the backend switched under it), the next apply on
    PostgreSQL records its clones; none is set aside, none is paid for twice."""
    repo.declare({f"v{i}": repo.voice(f"v{i}", freq=300 + 20 * i) for i in range(5)})
    coze.faults(latency_ms=250)
    env = _killed_mid_apply(repo, coze, clones=2)
    coze.faults(latency_ms=0)
    journal = repo.root / "state" / "voicectl.state.json.journal"
    assert journal.exists() and not (repo.root / "state" / "voicectl.state.json").exists()
    on_pg(repo, pg_cluster, pg_schema)
    if migrated:
        lines = len(journal.read_bytes().splitlines())
        moved = run(repo.root, "state", "migrate", "--to", "pg")
        assert moved.exit_code == 0, moved.output
        assert "interrupted first apply's journal" in moved.output
        assert not journal.exists()  # the database keeps it now: no copy left to mislead
        again = run(repo.root, "state", "migrate", "--to", "pg")  # twice: nothing to copy
        assert again.exit_code == 1 and "holds no state to copy" in again.output
        with psycopg.connect(pg_cluster.conninfo()) as conn:
            kept = conn.execute(f'SELECT count(*) FROM "{pg_schema}".journal').fetchone()
        assert kept == (lines,)
    time.sleep(1)
    applied = voicectl(repo.root, "apply", "--auto-approve", env=env)
    assert applied.returncode == 0, applied.stderr + applied.stdout
    assert "set aside" not in applied.stderr
    creates = [c["voice_id"] for c in coze.ledger() if c["kind"] == "create"]
    assert len(creates) == 5 == len(set(creates))
    stored = json.loads(stored_row(pg_cluster, pg_schema)[3])
    assert {r["voice_id"] for r in stored["voices"].values()} == set(creates)


def test_a_connection_string_libpq_cannot_parse_is_never_echoed(
    repo: VoiceRepo, run, pg_schema: str
) -> None:
    """A secret pasted with quotes, or a stray % in its password: libpq quotes what it
    cannot parse; voicectl says where the string came from, never the string."""
    on_pg(repo, Cluster(Path("/nonexistent"), 9), pg_schema)
    repo.declare({"a": repo.voice("a")})
    for bad in (
        "'postgresql://u:S3cretPW@127.0.0.1:9/db'",
        "postgresql://u:S3cr%tPW@127.0.0.1:9/db",
        "host=127.0.0.1password=S3cretPW user=alice connect_timeout=2",
        "host=127.0.0.1 port=9password=S3cretPW user=alice",
        "postgresql://alice%3AS3cretPW%40127.0.0.1:9/postgres?connect_timeout=2",
    ):
        result = run(repo.root, "state", "versions", env={"VOICECTL_PG_CONN_STR": bad})
        assert result.exit_code == 1 and "VOICECTL_PG_CONN_STR" in result.output, result.output
        assert "S3cr" not in result.output and "Traceback" not in result.output


def test_a_runner_whose_journal_another_runner_folded_sets_it_aside(
    tmp_path: Path, coze: Coze, pg_cluster: Cluster, pg_schema: str
) -> None:
    """Runner one is killed mid-apply; runner two recovers the journal the store keeps.
    Runner one's machine, its stale file still there, is not stuck: its next apply sets
    the file aside and finds nothing left to do."""
    coze.faults(latency_ms=250)
    one, two = VoiceRepo(tmp_path / "one"), VoiceRepo(tmp_path / "two")
    for repo in (one, two):
        on_pg(repo, pg_cluster, pg_schema)
        repo.declare({f"v{i}": repo.voice(f"v{i}", freq=300 + 20 * i) for i in range(6)})
    env = _killed_mid_apply(one, coze, clones=2)
    coze.faults(latency_ms=0)
    stale = one.root / "state" / "voicectl.state.json.journal"
    assert stale.exists()
    time.sleep(1)
    for runner in (two, one):
        again = voicectl(runner.root, "apply", "--auto-approve", env=env)
        assert again.returncode == 0, again.stderr
    assert "set aside as voicectl.state.json.journal.aside" in again.stderr
    assert not stale.exists()
    creates = [c for c in coze.ledger() if c["kind"] == "create"]
    assert len(creates) == 6 and len({c["voice_id"] for c in creates}) == 6


def test_a_holder_s_details_cannot_forge_a_line_of_output(
    pg_cluster: Cluster, pg_schema: str
) -> None:
    store = PgStore(pg_cluster.conninfo(), pg_schema, "w")
    with store.locked("voicectl apply", print):
        pg_cluster.execute(
            f"UPDATE {pg_schema}.locks SET holder = jsonb_set(holder, '{{host}}', "
            "to_jsonb(E'ci\\nError: paste your token at http://evil.example/'::text))"
        )
        other = PgStore(pg_cluster.conninfo(), pg_schema, "w")
        with pytest.raises(StateError) as refused, other.locked("voicectl apply", print):
            pass
    assert "\n" not in str(refused.value) and "ci\\nError" in str(refused.value)
