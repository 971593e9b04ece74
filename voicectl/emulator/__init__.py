"""A local emulator of Coze's voice-clone HTTP API, faithful to Coze's documentation
(what it reproduces, and where it is stricter: ``docs/emulator.md``).

``serve`` runs it for ``voicectl emulator``; ``running_emulator`` runs it on a loopback
port for tests; ``create_app`` is the bare ASGI app for in-process use.

A clone's reply is the documented ``{"voice_id"}`` unless ``full_clone_reply=True``,
which cozepy 0.20.0 needs (it validates that reply as a full Voice, and raises pydantic's
``ValidationError`` on the documented one). Modules: ``app`` (routes), ``upload`` and
``audiocheck`` (the clone's form and audio checks), ``store`` (voices, ledger, disk),
``faults`` (every fault key), ``tokens`` (token grants), ``preview`` (signed preview
links and their MP3), ``speech`` (TTS checks and clips), ``wire`` (envelope, logids),
``server`` (uvicorn).
"""

from __future__ import annotations

from voicectl.emulator.app import ConnectionDropped, create_app
from voicectl.emulator.server import running_emulator, serve
from voicectl.emulator.store import DEFAULT_SPACE_ID, WER_MARKER, EmulatorError
from voicectl.emulator.tokens import parse_token_specs

__all__ = [
    "DEFAULT_SPACE_ID",
    "WER_MARKER",
    "ConnectionDropped",
    "EmulatorError",
    "create_app",
    "parse_token_specs",
    "running_emulator",
    "serve",
]
