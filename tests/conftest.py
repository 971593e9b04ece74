"""Shared fixtures: real voice repositories on disk with real (synthetic) audio."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from click.testing import CliRunner, Result

from tests.pgcluster import Cluster, running_cluster
from voicectl.cli import cli
from voicectl.coze import transport
from voicectl.emulator.admin import Admin
from voicectl.emulator.server import running_emulator
from voicectl.emulator.tones import write_wav

with warnings.catch_warnings():
    # cozepy (the official SDK the emulator is checked with) imports authlib.jose, which
    # authlib deprecates at import, behind an "always" filter of its own: that filter is
    # set first, so that this one, set after, outranks it for the import.
    import authlib.deprecate  # noqa: F401

    warnings.simplefilter("ignore", DeprecationWarning)
    import cozepy


_OPENED: list[httpx.Client] = []


def http_client(base: str, timeout: float = 600.0) -> httpx.Client:
    """voicectl's HTTP client for ``base``, closed when the test ends."""
    client = transport.http_client(base, timeout)
    _OPENED.append(client)
    return client


@pytest.fixture(autouse=True)
def _close_http_clients() -> Iterator[None]:
    yield
    while _OPENED:
        _OPENED.pop().close()


SDK = Callable[..., "cozepy.Coze"]


@pytest.fixture
def sdk_at() -> Iterator[SDK]:
    """cozepy at a URL (with a token, "t" by default), each on an httpx client closed when
    the test ends: cozepy never closes the one it makes itself."""
    with ExitStack() as clients:

        def at(url: str, token: str = "t") -> cozepy.Coze:
            http = clients.enter_context(cozepy.SyncHTTPClient())
            return cozepy.Coze(auth=cozepy.TokenAuth(token), base_url=url, http_client=http)

        yield at


class VoiceRepo:
    """A voice repository in a temporary directory, built from Python data."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.config: dict[str, Any] = {
            "defaults": {"language": "en", "space": "7350000000000000001"}
        }
        self.write_config()

    def write_config(self, **changes: Any) -> None:
        self.config.update(changes)
        (self.root / "voicectl.yaml").write_text(yaml.safe_dump(self.config, sort_keys=False))

    def audio(self, name: str, seconds: float = 12.0, freq: float = 440.0) -> str:
        write_wav(self.root / "audio" / name, seconds=seconds, freq=freq)
        return f"../audio/{name}"

    def declare(self, voices: dict[str, dict[str, Any]], file: str = "voices/voices.yaml") -> Path:
        path = self.root / file
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump({"voices": voices}, sort_keys=False, allow_unicode=True))
        return path

    def voice(self, address: str, freq: float = 440.0, **fields: Any) -> dict[str, Any]:
        body = {
            "name": f"{address.title()} voice",  # longer than 6 characters: no warning
            "audio": self.audio(f"{address}.wav", freq=freq),
            "text": f"The take of {address}.",
        }
        body.update(fields)
        return body

    def write(self, relative: str, text: str | bytes) -> Path:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text, encoding="utf-8")
        return path


@pytest.fixture
def repo(tmp_path: Path) -> VoiceRepo:
    return VoiceRepo(tmp_path / "repo")


@pytest.fixture
def run() -> Callable[..., Result]:
    """Run the real CLI entry point (the error funnel included) and capture its output."""

    def invoke(root: Path, *args: str, env: dict[str, str] | None = None) -> Result:
        from voicectl.cli import main

        token = (env or {}).get("COZE_API_TOKEN", "")
        if len(token) >= 8:
            SECRETS.add(token)
        runner = CliRunner()
        result = runner.invoke(
            _Main(main), ["-C", str(root), *args], env=env, catch_exceptions=False
        )
        texts = [result.stdout, result.stderr, result.output, repr(result.exception)]
        for secret in SECRETS:
            assert not any(secret in text for text in texts), "the token leaked into output"
        return result

    return invoke


SECRETS: set[str] = set()
"""Every token a test handed to voicectl: none may appear in any output or file."""


@pytest.fixture(autouse=True)
def _no_secret_on_disk(tmp_path: Path) -> Iterator[None]:
    """After each test, no file voicectl could have written (state, journal, lock, saved
    plans, caches) holds a token it was given."""
    yield
    if not SECRETS:
        return
    needles = [s.encode() for s in SECRETS]
    for path in tmp_path.rglob("*"):
        if path.is_file() and not path.is_symlink() and path.stat().st_size < 5_000_000:
            data = path.read_bytes()
            assert not any(n in data for n in needles), f"a token was written to {path}"


class _Main:
    """Adapts ``voicectl.cli.main`` (which calls sys.exit) to CliRunner's interface."""

    def __init__(self, main: Callable[[list[str]], None]) -> None:
        self.main_fn = main
        self.name = "voicectl"

    def main(self, args: list[str], prog_name: str | None = None, **_: Any) -> None:
        self.main_fn(list(args))


@pytest.fixture(autouse=True)
def _no_ambient_coze_account(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never reach a real Coze: a token or base in the developer's shell is ignored."""
    for name in ("COZE_API_TOKEN", "COZE_API_BASE"):
        monkeypatch.delenv(name, raising=False)
    # A lost clone missing from the list is read again once, at once, not after 2 and 5 s:
    # the suite stays fast; test_fidelity's lagging-list test sets its own waits.
    monkeypatch.setenv("VOICECTL_RECONCILE_SETTLE", "0")


__all__ = ["VoiceRepo", "cli", "holding_lock", "write_wav"]


@contextmanager
def holding_lock(state_path: Path, command: str = "voicectl apply") -> Iterator[int]:
    """Another process holding the state's lock, as a running apply does; yields its pid."""
    script = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from voicectl.state import lock\n"
        f"with lock.locked(Path({str(state_path)!r}), {command!r}, 'T', lambda m: None):\n"
        "    print('held', flush=True)\n"
        "    time.sleep(60)\n"
    )
    holder = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        yield holder.pid
    finally:
        holder.kill()
        holder.wait(timeout=10)
        assert holder.stdout is not None
        holder.stdout.close()


TOKEN = "pat_apply_test_token_Zq81"
"""The token the tests' emulator accounts accept (any non-empty token is accepted)."""

Coze = Admin
"""The emulator seen from a test: its base URL, ledger, voices and fault switches."""


@pytest.fixture
def coze(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Admin]:
    """A real emulator on a loopback socket for this test; ``@pytest.mark.emulator(...)``
    passes options to it (``full_clone_reply=True``, ``slots=N``, ...)."""
    marker = request.node.get_closest_marker("emulator")
    options: dict[str, Any] = dict(marker.kwargs) if marker else {}
    with running_emulator(tmp_path / "emulator-data", **options) as base:
        admin = Admin(base, TOKEN)
        try:
            yield admin
        finally:
            admin.close()


def state_of(root: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((root / "state" / "voicectl.state.json").read_text())
    return data


def assert_converged(repo_root: Path, coze: Coze) -> None:
    """Every declared voice cloned exactly once, the state equals Coze, nothing pending."""
    state = state_of(repo_root)
    remote = coze.voices()
    creates = [c for c in coze.ledger() if c["kind"] == "create"]
    assert len(creates) == len({c["voice_id"] for c in creates}) == len(remote)
    assert {r["voice_id"] for r in state["voices"].values()} == set(remote)
    for record in state["voices"].values():
        assert remote[record["voice_id"]]["available_training_times"] == 10 - record["clones_used"]
    assert not (repo_root / "state" / "voicectl.state.json.journal").exists()
    assert not (repo_root / "state" / "voicectl.state.json.lock").exists()


def many(repo: VoiceRepo, n: int) -> None:
    repo.declare({f"v{i:02d}": repo.voice(f"v{i:02d}", freq=300 + 10 * i) for i in range(n)})


class Background:
    """``voicectl apply --auto-approve`` in a process of its own, to be interrupted: its
    command and environment (to run it again), and a way to wait for clones."""

    def __init__(self, repo: VoiceRepo, coze: Admin, parallelism: int, stderr: bool) -> None:
        import os

        # A clone cut by a kill may be in Coze's hands for 1200 s; the emulator ends each
        # request with its connection, or within its latency.
        self.env = {**os.environ, **coze.env(), "VOICECTL_UNANSWERED_WAIT": "1"}
        self.command = [sys.executable, "-m", "voicectl", "-C", str(repo.root), "apply"]
        self.command.append("--auto-approve")
        self.coze = coze
        self.process = subprocess.Popen(
            [*self.command, "--parallelism", str(parallelism)],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE if stderr else subprocess.DEVNULL,
            text=True,
        )

    def wait_for_clones(self, count: int, within: float = 30.0) -> None:
        """Until the emulator's ledger holds ``count`` clones (or ``within`` s pass)."""
        import time

        deadline = time.monotonic() + within
        while len(self.coze.ledger()) < count and time.monotonic() < deadline:
            time.sleep(0.02)

    def again(self) -> subprocess.CompletedProcess[str]:
        """The same apply, run to its end."""
        return subprocess.run(self.command, env=self.env, capture_output=True, text=True)


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    """One throwaway PostgreSQL server for the session (tests/pgcluster.py)."""
    with running_cluster() as cluster:
        yield cluster


@pytest.fixture
def pg_schema(pg_cluster: Cluster, request: pytest.FixtureRequest) -> str:
    """A schema name of this test's own (not made: the store makes it)."""
    import hashlib

    return "t_" + hashlib.sha256(request.node.nodeid.encode()).hexdigest()[:16]


def reseal(journal: Path, coze: Admin) -> None:
    """Seal a journal a test edited, as an apply with the emulator's token would have
    written it (voicectl.coze.replies.Seal); a journal edited otherwise is not folded."""
    from voicectl.coze.replies import Seal, canonical

    seal = Seal(coze.base, coze.token)
    lines, sign = [], None
    for line in journal.read_text().splitlines():
        record = json.loads(line)
        record.pop("mac", None)
        if record.get("type") == "begin":
            sign = seal.signer(record.get("account") or {})
        assert sign is not None, "a journal begins with its begin record"
        lines.append(canonical({**record, "mac": sign(canonical(record))}).decode())
    journal.write_text("\n".join(lines) + "\n")


def sealed_journal(path: Path, base: Any, coze: Admin) -> Any:
    """A journal begun as a crashed apply with the emulator's token began it: its account
    recorded and every line sealed (voicectl.coze.replies.Seal)."""
    from voicectl.coze.replies import Seal
    from voicectl.state.journal import Journal

    seal = Seal(coze.base, coze.token)
    account = seal.record()
    return Journal.begin(
        path, base, "2026-11-25T06:00:00Z", account=account, sign=seal.signer(account)
    )
