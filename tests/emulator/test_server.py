"""``serve``, the blocking entry point behind ``voicectl emulator``, in a real process."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from voicectl.emulator import EmulatorError, serve

SCRIPT = """
import sys
from pathlib import Path
from voicectl.emulator import serve
try:
    echo = lambda line: print(line, flush=True)
    serve("127.0.0.1", 0, Path(sys.argv[1]), sys.argv[2:], echo, verbose=True, access_log=True)
except KeyboardInterrupt:
    sys.exit(130)
"""


def start(data_dir: Path, *tokens: str) -> tuple[subprocess.Popen[str], str, list[str]]:
    process = subprocess.Popen(
        [sys.executable, "-c", SCRIPT, str(data_dir), *tokens],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    lines = [process.stdout.readline()]
    found = re.search(r"http://127\.0\.0\.1:\d+", lines[0])
    assert found, lines
    return process, found.group(0), lines


def stop(process: subprocess.Popen[str]) -> tuple[str, str]:
    process.send_signal(signal.SIGINT)
    # Not communicate(): it would miss what readline() already buffered from stdout.
    assert process.wait(timeout=10) == 130  # a graceful shutdown, then ^C reaches the caller
    assert process.stdout is not None and process.stderr is not None
    with process.stdout, process.stderr:
        return process.stdout.read(), process.stderr.read()


def test_serve_announces_url_auth_and_clone_reply_and_stops_on_ctrl_c(
    tmp_path: Path,
) -> None:
    process, url, lines = start(tmp_path)
    try:
        reply = httpx.get(f"{url}/v1/audio/voices", headers={"Authorization": "Bearer x"})
        assert reply.json()["code"] == 0
    finally:
        out, _ = stop(process)
    printed = "".join(lines) + out
    assert "any non-empty bearer token" in printed
    assert 'only {"voice_id"}' in printed and "cozepy" in printed
    assert "full_clone_reply" in printed


def test_serve_never_prints_a_token_value(tmp_path: Path) -> None:
    secret = "pat_SECRET_value_123"
    process, url, lines = start(tmp_path, f"{secret}:scopes=listVoice")
    try:
        for token in (secret, f"{secret}x"):
            httpx.get(f"{url}/v1/audio/voices", headers={"Authorization": f"Bearer {token}"})
    finally:
        out, err = stop(process)
    printed = "".join(lines) + out + err
    assert "1 configured token" in printed
    assert "SECRET" not in printed


def test_serve_refuses_an_address_in_use(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(EmulatorError, match=f"127.0.0.1:{port}"):
            serve("127.0.0.1", port, tmp_path, [], print)


def test_serve_refuses_a_bad_token_spec_before_listening(tmp_path: Path) -> None:
    echoed: list[str] = []
    with pytest.raises(EmulatorError, match="token spec #1"):
        serve("127.0.0.1", 0, tmp_path, ["pat:scopes=everything"], echoed.append)
    assert echoed == []
