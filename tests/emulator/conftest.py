"""Fixtures for the emulator tests: a real uvicorn server on a loopback port, cozepy clients.

One emulator serves a whole module (reset before each test, so tests stay independent);
tests that need their own settings (the documented clone reply, quotas, no tokens) start
their own. The shared one answers clones with the full Voice record
(``full_clone_reply``): cozepy 0.20.0 cannot read the documented ``{"voice_id"}`` reply.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from authlib.deprecate import AuthlibDeprecationWarning

from tests.conftest import SDK
from voicectl.emulator import running_emulator
from voicectl.emulator.tones import tone_wav

# cozepy imports authlib.jose, which warns of its own deprecation through a filter of its own;
# importing it here first, quietly, keeps the later imports in the test modules quiet.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", AuthlibDeprecationWarning)
    import cozepy

FULL = "pat_full_access"
LIST_ONLY = "pat_list_only"
SPACE_A_ONLY = "pat_space_a"
NO_SCOPE = "pat_no_scope"
SPACE_A = "7350000000000000111"
TOKEN_SPECS = (
    FULL,
    f"{LIST_ONLY}:scopes=listVoice",
    f"{SPACE_A_ONLY}:spaces={SPACE_A}",
    f"{NO_SCOPE}:scopes=",
)


def make_wav(seconds: float = 1.0, rate: int = 16000) -> bytes:
    """A real, tiny, silent mono 16-bit WAV."""
    return tone_wav(seconds, rate, amplitude=0)


@pytest.fixture(scope="session")
def wav() -> bytes:
    return make_wav()


@pytest.fixture(scope="module")
def shared_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data_dir = tmp_path_factory.mktemp("emulator")
    with running_emulator(data_dir, tokens=TOKEN_SPECS, full_clone_reply=True) as url:
        yield url


@pytest.fixture
def url(shared_url: str) -> str:
    """The module's emulator, with no voice, ledger entry or fault left by an earlier test."""
    httpx.post(f"{shared_url}/_emulator/reset").raise_for_status()
    return shared_url


@pytest.fixture
def coze(url: str, sdk_at: SDK) -> cozepy.Coze:
    return sdk_at(url, FULL)


@pytest.fixture
def coze_as(url: str, sdk_at: SDK) -> Callable[[str], cozepy.Coze]:
    return lambda token: sdk_at(url, token)


@pytest.fixture
def admin(url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=url) as client:
        yield client


@pytest.fixture
def raw(url: str) -> Iterator[httpx.Client]:
    """Plain httpx with a good token, for what cozepy cannot send or does not show."""
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {FULL}"}) as client:
        yield client


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"
