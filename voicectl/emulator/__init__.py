"""A local emulator of Coze's voice-clone HTTP API, faithful to ``coze-voice-api.md``.

``serve`` runs it for ``voicectl emulator``; ``running_emulator`` runs it on a loopback
port for tests; ``create_app`` is the bare ASGI app for in-process use.
"""

from __future__ import annotations

from voicectl.emulator.app import ConnectionDropped, create_app
from voicectl.emulator.faults import parse_token_specs
from voicectl.emulator.server import running_emulator, serve
from voicectl.emulator.store import DEFAULT_SPACE_ID, WER_MARKER, EmulatorError

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
