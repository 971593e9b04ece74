"""The Coze account as the commands see it: the token, the client, the voice list."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import click

from voicectl.cli.waits import wait_budget
from voicectl.coze import replies
from voicectl.coze.apibase import CN_BASE
from voicectl.coze.pacing import Retry
from voicectl.errors import UsageError

if TYPE_CHECKING:
    from voicectl.coze.client import CozeClient
    from voicectl.declare.config import Config

TOKEN_VARIABLE = "COZE_API_TOKEN"


def has_token() -> bool:
    return bool(os.environ.get(TOKEN_VARIABLE, "").strip())


def journal_check(cfg: Config) -> replies.Seal | None:
    """What tells an apply journal written with this token and API base (see
    voicectl.apply.recovery); None without a token, when nothing can tell."""
    token = os.environ.get(TOKEN_VARIABLE, "").strip()
    if not token:
        return None
    base = os.environ.get("COZE_API_BASE", "").strip() or cfg.api_base or CN_BASE
    return replies.Seal(base.rstrip("/"), token)  # as the client spells it


def client_for(cfg: Config, purpose: str) -> CozeClient:
    """A client for the configured base; ``purpose`` says in the error what needs it."""
    token = os.environ.get(TOKEN_VARIABLE, "").strip()
    if not token:
        raise UsageError(
            f"{TOKEN_VARIABLE} is not set: {purpose} needs a Coze token (apply: createVoice, "
            "listVoice and createSpeech permissions; speak: listVoice and createSpeech; read-only "
            "commands: listVoice)"
        )
    if not (token.isascii() and token.isprintable()):
        raise UsageError(
            f"{TOKEN_VARIABLE} holds characters a token cannot have (it must be printable "
            "ASCII, as Coze's tokens are): was it pasted with something else?"
        )
    # Loaded here, as deepdiff, jsonschema and mutagen are where they are used: httpx
    # would cost a plan without a token a tenth of its time (bench/RESULTS.md), and only
    # a client needs it. The layer contracts read this import like any other.
    from voicectl.coze.client import CozeClient, http_client

    base = os.environ.get("COZE_API_BASE", "").strip() or cfg.api_base or CN_BASE
    http = http_client(base)
    context = click.get_current_context(silent=True)
    if context is not None:  # its connections closed when the command ends
        context.call_on_close(http.close)
    return CozeClient(http, token, Retry(sleep=wait_budget()))
