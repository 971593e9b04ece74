"""Security: the token never leaves voicectl, no input can make it upload a file from
outside the repository, and TLS is always verified.

The token sweep runs every command that can reach Coze, also under ``--debug`` and
against an account that refuses the token, a failing and a reply-losing Coze, with a
canary token; ``tests/conftest.py`` checks every output stream and exception of each
run, and every file under the test's directory afterwards, for it. Confinement is
checked with a Python audit hook (PEP 578, ``tests/badinput.py``): the outside file is
never even opened, and the emulator's ledger shows what was uploaded.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import shutil
import ssl
from pathlib import Path

import httpx
import pytest
import trustme

from tests.badinput import audited
from tests.conftest import SECRETS, TOKEN, Coze, VoiceRepo, state_of, write_wav
from voicectl.emulator.server import running_emulator

PROJECT = Path(__file__).resolve().parent.parent
CANARY = "pat_CANARY_0f3c9a7e5d1b2468ace13579bdf02468"


# --- the token --------------------------------------------------------------------------


def canary_env(coze: Coze) -> dict[str, str]:
    return {"COZE_API_BASE": coze.base, "COZE_API_TOKEN": CANARY}


def every_command(repo: VoiceRepo) -> list[list[str]]:
    """Every command that reads the token or talks to Coze, and the read-only ones."""
    return [
        ["validate"],
        ["plan"],
        ["plan", "--json"],
        ["plan", "--format", "markdown"],
        ["plan", "--out", "plan.json"],
        ["show", "plan.json"],
        ["apply", "plan.json"],
        ["apply", "--auto-approve"],
        ["apply", "--auto-approve", "--json"],
        ["drift"],
        ["refresh"],
        ["import", "imported", "7400000000000000999"],
        ["state", "list"],
        ["state", "show", "a"],
        ["history"],
    ]


@pytest.mark.parametrize(
    "account",
    ["accepting", "refusing-the-token", "failing-with-5xx", "losing-replies"],
)
@pytest.mark.parametrize("debug", [False, True], ids=["plain", "debug"])
def test_the_token_appears_in_no_output_file_or_error(
    repo: VoiceRepo, run, tmp_path: Path, account: str, debug: bool
) -> None:
    """Every command, every account behaviour, with and without --debug tracebacks."""
    repo.declare({"a": repo.voice("a", freq=300), "b": repo.voice("b", freq=600)})
    tokens = () if account != "refusing-the-token" else ("pat_someone_else_entirely",)
    with running_emulator(tmp_path / "emulator", tokens) as base, Coze(base, TOKEN) as coze:
        if account == "failing-with-5xx":
            coze.faults(fail={"code": 5000, "http_status": 502, "count": 1000, "endpoint": "clone"})
        elif account == "losing-replies":
            coze.faults(drop_after_commit=1)
        exits = []
        for args in every_command(repo):
            result = run(repo.root, *(["--debug"] if debug else []), *args, env=canary_env(coze))
            exits.append(result.exit_code)
            assert CANARY not in result.output
        if account == "accepting":
            assert len(coze.ledger()) == 2  # the sweep really reached Coze
        if account == "refusing-the-token":
            assert coze.ledger() == []
            assert 1 in exits
    assert CANARY in SECRETS  # so the conftest checks scan for it after this test too
    hits = [p for p in tmp_path.rglob("*") if p.is_file() and CANARY.encode() in p.read_bytes()]
    assert hits == []


def test_a_refused_token_is_named_but_never_shown(repo: VoiceRepo, run, tmp_path: Path) -> None:
    repo.declare({"a": repo.voice("a")})
    refusing = running_emulator(tmp_path / "emulator", ("pat_someone_else_entirely",))
    with refusing as base, Coze(base, TOKEN) as coze:
        result = run(repo.root, "apply", "--auto-approve", env=canary_env(coze))
    assert result.exit_code == 1
    assert "4100" in result.output and "the token is invalid" in result.output
    assert CANARY not in result.output and CANARY[-8:] not in result.output


@pytest.mark.parametrize(
    "base",
    [
        f"https://user:{CANARY}@api.coze.cn",
        f"https://api.coze.cn/?token={CANARY}",
        f"https://api.coze.cn:99999/{CANARY}",
    ],
    ids=["credentials", "query", "bad-port"],
)
def test_a_secret_in_coze_api_base_is_never_echoed(repo: VoiceRepo, run, base: str) -> None:
    repo.declare({"a": repo.voice("a")})
    with audited() as audit:
        result = run(
            repo.root,
            "apply",
            "--auto-approve",
            env={"COZE_API_BASE": base, "COZE_API_TOKEN": TOKEN},
        )
    assert result.exit_code == 1
    assert "COZE_API_BASE" in result.output
    assert CANARY not in result.output
    assert audit.network == []


@pytest.mark.parametrize(
    "base", ["https://coze.attacker.example", "http://127.0.0.1:8787", "https://api.coze.cn.evil"]
)
def test_the_repository_chooses_only_between_coze_s_two_sites(
    repo: VoiceRepo, run, base: str
) -> None:
    """voicectl.yaml is changed by pull requests: it must not send the token anywhere."""
    repo.write_config(defaults={**repo.config["defaults"], "api_base": base})
    repo.declare({"a": repo.voice("a")})
    with audited() as audit:
        result = run(repo.root, "apply", "--auto-approve", env={"COZE_API_TOKEN": TOKEN})
    assert result.exit_code == 1
    assert "defaults.api_base" in result.output and "COZE_API_BASE" in result.output
    assert audit.network == []
    repo.write_config(defaults={**repo.config["defaults"], "api_base": "https://api.coze.com/"})
    assert run(repo.root, "validate").exit_code == 0


def test_plain_http_never_goes_through_a_proxy_from_the_environment(
    repo: VoiceRepo, coze: Coze, run, monkeypatch: pytest.MonkeyPatch
) -> None:
    """HTTP_PROXY would carry the token in clear text to the proxy host."""
    import socket
    import threading

    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    port = listener.getsockname()[1]
    seen: list[bytes] = []
    stop = threading.Event()

    def proxy() -> None:
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            with connection:
                seen.append(connection.recv(65536))

    thread = threading.Thread(target=proxy, daemon=True)
    thread.start()
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.setenv(name, f"http://127.0.0.1:{port}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    try:
        repo.declare({"a": repo.voice("a")})
        result = run(repo.root, "apply", "--auto-approve", env=coze.env())
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()
    assert result.exit_code == 0, result.output
    assert seen == [] and len(coze.ledger()) == 1


# --- confinement --------------------------------------------------------------------------


def secret_file(repo: VoiceRepo) -> Path:
    """A valid take outside the repository: what a hostile change would like to upload."""
    return write_wav(repo.root.parent / "home" / ".ssh" / "id_rsa.wav", freq=777)


def uploaded(coze: Coze) -> set[str]:
    return {e["audio_sha256"] for e in coze.ledger()}


def test_a_hand_edited_state_cannot_point_voicectl_at_an_outside_file(
    repo: VoiceRepo, coze: Coze, run
) -> None:
    """The state's take paths are records, never inputs: edited to name a file outside
    the repository (absolute or by ..), no command opens it and nothing is uploaded."""
    secret = secret_file(repo)
    repo.declare({"a": repo.voice("a")})
    assert run(repo.root, "apply", "--auto-approve", env=coze.env()).exit_code == 0
    state_path = repo.root / "state" / "voicectl.state.json"
    for bad_path in (str(secret), "../home/.ssh/id_rsa.wav", "/etc/passwd"):
        data = state_of(repo.root)
        data["voices"]["a"]["audio"]["path"] = bad_path
        data["voices"]["a"]["audio"]["sha256"] = hashlib.sha256(secret.read_bytes()).hexdigest()
        state_path.write_text(json.dumps(data, indent=2))
        with audited() as audit:
            for args in (["plan"], ["apply", "--auto-approve"], ["drift"], ["history"]):
                run(repo.root, *args, env=coze.env())
        assert not audit.touched(secret)
        assert not audit.touched(Path("/etc/passwd"))
        assert hashlib.sha256(secret.read_bytes()).hexdigest() not in uploaded(coze)
    # The create, then per edit a retrain (the state no longer matches a.wav): every
    # upload is a.wav, the declared take inside the repository.
    assert len(coze.ledger()) == 4
    assert uploaded(coze) == {hashlib.sha256((repo.root / "audio/a.wav").read_bytes()).hexdigest()}


def test_a_saved_plan_naming_an_outside_file_is_refused_unread(
    repo: VoiceRepo, coze: Coze, run
) -> None:
    """A plan file is reviewed JSON that anyone in the pull request could edit: a change
    rewritten to upload a file outside the repository is refused before any upload,
    and the file is never opened."""
    secret = secret_file(repo)
    repo.declare({"a": repo.voice("a")})
    assert run(repo.root, "plan", "--out", "plan.json").exit_code == 0
    plan_path = repo.root / "plan.json"
    original = json.loads(plan_path.read_text())
    for bad_path in (str(secret), "../home/.ssh/id_rsa.wav"):
        data = json.loads(json.dumps(original))
        (change,) = data["changes"]
        change["after"]["audio"]["path"] = bad_path
        plan_path.write_text(json.dumps(data))
        with audited() as audit:
            result = run(repo.root, "apply", "plan.json", env=coze.env())
        assert result.exit_code == 1, result.output
        assert "Traceback" not in result.output
        assert not audit.touched(secret)
        assert coze.ledger() == []


def test_a_take_swapped_for_a_link_outside_after_review_is_refused(
    repo: VoiceRepo, coze: Coze, run
) -> None:
    """Between review and apply the take becomes a symlink to an outside file with the
    same bytes: the plan still matches by hash, but the path leaves the repository."""
    repo.declare({"a": repo.voice("a")})
    assert run(repo.root, "plan", "--out", "plan.json").exit_code == 0
    take = repo.root / "audio" / "a.wav"
    outside = repo.root.parent / "elsewhere.wav"
    shutil.copyfile(take, outside)
    take.unlink()
    take.symlink_to(outside)
    result = run(repo.root, "apply", "plan.json", env=coze.env())
    assert result.exit_code == 1
    assert "resolves outside the repository" in result.output
    assert coze.ledger() == []


# --- transport ----------------------------------------------------------------------------


@pytest.fixture
def tls(tmp_path: Path) -> tuple[trustme.CA, Path, Path]:
    """A throw-away certificate authority and a certificate from it for 127.0.0.1."""
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    keys = tmp_path / "tls"
    keys.mkdir()
    cert.private_key_pem.write_to_path(keys / "key.pem")
    cert.cert_chain_pems[0].write_to_path(keys / "cert.pem")
    ca.cert_pem.write_to_path(keys / "ca.pem")
    return ca, keys / "cert.pem", keys / "key.pem"


def trusting(cert: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(cert.parent / "ca.pem"))


def test_an_untrusted_certificate_stops_apply_before_any_upload(
    repo: VoiceRepo, run, tmp_path: Path, tls: tuple[trustme.CA, Path, Path]
) -> None:
    """https to a server whose certificate no trusted authority signed (a man in the
    middle, say) fails: named as a TLS failure, exit 1, nothing cloned."""
    _, cert, key = tls
    repo.declare({"a": repo.voice("a")})
    with running_emulator(tmp_path / "emulator", tls=(cert, key)) as base:
        assert base.startswith("https://127.0.0.1:")
        result = run(
            repo.root,
            "apply",
            "--auto-approve",
            env={"COZE_API_BASE": base, "COZE_API_TOKEN": TOKEN},
        )
        ledger = httpx.get(f"{base}/_emulator/ledger", verify=trusting(cert))
    assert result.exit_code == 1
    assert "TLS certificate verification failed" in result.output
    assert "Traceback" not in result.output
    assert ledger.json() == {"clones": []}


def test_a_private_authority_is_trusted_through_ssl_cert_file_not_by_turning_checks_off(
    repo: VoiceRepo, run, tmp_path: Path, tls: tuple[trustme.CA, Path, Path]
) -> None:
    """A company proxy's authority is added with SSL_CERT_FILE; verification stays on."""
    _, cert, key = tls
    repo.declare({"a": repo.voice("a")})
    with running_emulator(tmp_path / "emulator", tls=(cert, key)) as base:
        env = {
            "COZE_API_BASE": base,
            "COZE_API_TOKEN": TOKEN,
            "SSL_CERT_FILE": str(cert.parent / "ca.pem"),
        }
        result = run(repo.root, "apply", "--auto-approve", env=env)
        ledger = httpx.get(f"{base}/_emulator/ledger", verify=trusting(cert))
    assert result.exit_code == 0, result.output
    assert len(ledger.json()["clones"]) == 1


def test_no_code_path_turns_tls_verification_off() -> None:
    """No ``verify=False`` (or any verify but True) in voicectl's own client code."""
    for path in (PROJECT / "voicectl").rglob("*.py"):
        if "emulator" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.keyword) and node.arg == "verify":
                assert isinstance(node.value, ast.Constant) and node.value.value is True, path


def test_a_tls_failure_is_not_retried(tmp_path: Path, tls: tuple[trustme.CA, Path, Path]) -> None:
    """No retry mends a certificate: neither the list nor a clone backs off and retries."""
    from tests.conftest import http_client
    from voicectl.coze.client import CozeClient
    from voicectl.coze.pacing import Retry
    from voicectl.errors import TransportError

    _, cert, key = tls
    waits: list[float] = []
    with running_emulator(tmp_path / "emulator", tls=(cert, key)) as base:
        client = CozeClient(http_client(base), TOKEN, retry=Retry(sleep=waits.append))
        with pytest.raises(TransportError, match="TLS certificate verification failed"):
            list(client.voices())
        with pytest.raises(TransportError, match="TLS certificate verification failed"):
            client.clone(
                audio=write_wav(tmp_path / "take.wav"),
                audio_format="wav",
                voice_name="v",
                language="en",
                text="hello",
                preview_text=None,
                space_id=None,
            )
    assert waits == []


# --- state-side paths a pull request can plant ---------------------------------------------


def _plant(repo: VoiceRepo, relative: str, kind: str, outside: Path) -> None:
    path = repo.root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() or path.is_symlink():
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    if kind == "link to /dev/zero":
        path.symlink_to("/dev/zero")
    elif kind == "link outside":
        path.symlink_to(outside)
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "hard link to the state":
        os.link(repo.root / "state" / "voicectl.state.json", path)
    else:
        path.mkdir()


PLANTED = [
    (relative, kind)
    for relative in ("state/voicectl.state.json", "state/voicectl.state.json.journal")
    for kind in ("link to /dev/zero", "link outside", "fifo", "directory")
] + [
    (".voicectl/cache", "link outside"),
    (".voicectl", "link outside"),
    ("state/voicectl.state.json.journal", "hard link to the state"),
    ("state/voicectl.state.json.lock", "hard link to the state"),
    ("state/voicectl.state.json.lock", "directory"),
]


@pytest.mark.parametrize(("relative", "kind"), PLANTED)
def test_a_planted_state_side_path_is_refused_not_followed(
    tmp_path: Path, repo: VoiceRepo, coze: Coze, run, relative: str, kind: str
) -> None:
    """Followed, each would hang voicectl, exhaust memory, or read or write outside."""
    repo.declare({"a": repo.voice("a")})
    assert run(repo.root, "apply", "--auto-approve", env=coze.env()).exit_code == 0
    outside = tmp_path / "outside"
    outside.mkdir()
    target = outside / "target.json"
    target.write_text('{"secret": true}')
    state_bytes = (repo.root / "state" / "voicectl.state.json").read_bytes()
    _plant(repo, relative, kind, outside if relative.startswith(".voicectl") else target)
    before = {p: p.read_bytes() for p in outside.rglob("*") if p.is_file()}
    locks = relative.endswith(".lock") or kind.startswith("hard link")  # apply writes
    args = ("apply", "--auto-approve") if locks else ("plan",)
    result = run(repo.root, *args, env=coze.env())
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output and "bug" not in result.output
    assert relative.split("/")[-1] in result.output
    said = (
        "symbolic link",
        "not a regular file",
        "is a directory",
        "is a link",
        "outside",
        "hard link",
        "corrupt",  # a journal that is the state's bytes: read, and refused, never written
    )
    assert any(words in result.output for words in said), result.output
    assert {p: p.read_bytes() for p in outside.rglob("*") if p.is_file()} == before
    if kind.startswith("hard link"):
        assert (repo.root / "state" / "voicectl.state.json").read_bytes() == state_bytes
    if relative.endswith(".lock") and kind == "directory":
        unlock = run(repo.root, "force-unlock", "unknown")
        assert unlock.exit_code == 1 and "is a directory" in unlock.output


def test_a_token_that_is_not_printable_ascii_is_one_clear_error(repo: VoiceRepo, run) -> None:
    repo.declare({"a": repo.voice("a")})
    with audited() as audit:
        result = run(
            repo.root,
            "apply",
            "--auto-approve",
            env={"COZE_API_TOKEN": "pat_\u00fcber_token", "COZE_API_BASE": "http://127.0.0.1:9"},
        )
    assert result.exit_code == 1 and "printable ASCII" in result.output
    assert "bug" not in result.output and audit.network == []
