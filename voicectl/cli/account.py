"""The Coze account as the commands see it: the token, the client, the voice list."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from voicectl.errors import UsageError, VoicectlError
from voicectl.plan import drift

if TYPE_CHECKING:
    from voicectl.coze.client import CozeClient
    from voicectl.declare.config import Config
    from voicectl.model import RemoteVoice, State

TOKEN_VARIABLE = "COZE_API_TOKEN"


def has_token() -> bool:
    return bool(os.environ.get(TOKEN_VARIABLE, "").strip())


def client_for(cfg: Config, purpose: str) -> CozeClient:
    """A client for the configured base; ``purpose`` says in the error what needs it."""
    from voicectl.coze.apibase import CN_BASE
    from voicectl.coze.client import CozeClient, http_client
    from voicectl.coze.pacing import Retry

    token = os.environ.get(TOKEN_VARIABLE, "").strip()
    if not token:
        raise UsageError(
            f"{TOKEN_VARIABLE} is not set: {purpose} needs a Coze token (apply: createVoice "
            "and listVoice permissions; read-only commands: listVoice)"
        )
    if not (token.isascii() and token.isprintable()):
        raise UsageError(
            f"{TOKEN_VARIABLE} holds characters a token cannot have (it must be printable "
            "ASCII, as Coze's tokens are): was it pasted with something else?"
        )
    base = os.environ.get("COZE_API_BASE", "").strip() or cfg.api_base or CN_BASE
    from voicectl.cli.waits import wait_budget

    return CozeClient(http_client(base), token, Retry(sleep=wait_budget()))


def remote_voices(client: CozeClient, state: State | None = None) -> dict[str, RemoteVoice]:
    """Every custom voice the token can see, by voice id, from a complete listing.

    With ``state``, its size lets the list ask for that many pages at once, and a listing
    that holds none of its voice ids is refused: that is another account (a wrong token,
    the other region, another team), where an apply would clone every voice anew.
    """
    known = state.voice_ids() if state is not None else set()
    remote = {voice.voice_id: voice for voice in client.voices(expected=len(known))}
    reason = drift.wrong_account(known, remote.keys(), client.base_url)
    if reason is not None:
        raise VoicectlError(f"{reason}. Nothing was cloned")
    return remote
