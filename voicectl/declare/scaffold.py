"""`voicectl init`: the files of a new voice repository."""

from __future__ import annotations

from pathlib import Path

from voicectl.declare.config import CONFIG_FILE
from voicectl.errors import ConfigError
from voicectl.files.atomic import write_atomic
from voicectl.files.safefile import linked_part

SCHEMA_BASE = "https://voicectl.dev/schemas"


def _config_text(space: str | None, language: str | None) -> str:
    space_line = f'  space: "{space}"' if space else '  # space: "7350000000000000001"'
    language_line = f"  language: {language}" if language else "  # language: en"
    return (
        f"# yaml-language-server: $schema={SCHEMA_BASE}/config.schema.json\n"
        "# voicectl repository configuration. `voicectl schema config` prints its schema.\n"
        '# Remove a line\'s "# " to use it.\n'
        "voices:\n  - voices/**/*.yaml\n"
        "state: state/voicectl.state.json\n"
        "defaults:\n"
        f"{space_line:<38}# the Coze workspace id of voices that name none\n"
        f"{'':<38}# (none: the token owner's personal space)\n"
        f"{language_line:<38}# zh, en, ja, es, id or pt\n"
        "policy:\n"
        "  max_new_voices: 5                   # the most new voice ids one apply may create\n"
        "  max_one_time_cny: 690               # the most one-time CNY one apply may spend\n"
        "  # max_voices: 3                     # the account's voice slots (expansion packs)\n"
        "  # strict_takes: true                # take warnings are errors (for CI)\n"
    )


VOICES_TEXT = f"""\
# yaml-language-server: $schema={SCHEMA_BASE}/voices.schema.json
# One voice per address. The address is voicectl's stable key; it never goes to Coze.
# To declare the example, remove the "#" at the start of the six lines below it.
voices:
#  narrator:
#    name: Narrator              # the voice_name Coze shows (at most 128 bytes)
#    audio: ../audio/narrator.wav  # relative to this file; 10-30 s, at most 10 MB
#    text: The transcript of exactly what is said in the take.
#    language: en                # zh, en, ja, es, id or pt
#    preview_text: Hello from the narrator.
"""


def init_repository(directory: Path, space: str | None, language: str | None) -> list[Path]:
    """Create a voice repository in ``directory``; refuses to touch an existing one."""
    if (directory / CONFIG_FILE).exists():
        raise ConfigError(f"{directory / CONFIG_FILE} already exists; nothing was changed")
    files = {
        directory / CONFIG_FILE: _config_text(space, language),
        directory / "voices" / "voices.yaml": VOICES_TEXT,
        directory / "audio" / ".gitkeep": "",
        directory / "state" / ".gitkeep": "",
    }
    gitignore = directory / ".gitignore"
    for path in [*files, gitignore]:
        link = linked_part(directory, path)
        if link is not None:
            raise ConfigError(f"{link} is a symbolic link; init writes no file through one")
    created = []
    for path, text in files.items():
        if path.exists():
            continue
        write_atomic(path, text.encode("utf-8"))  # a full disk leaves no half a file
        created.append(path)
    existing = gitignore.read_text(encoding="utf-8") if gitignore.exists() else ""
    # The caches, and the torn journal tails set aside for a person: this machine's, not
    # the repository's (the journal itself, and the state, are).
    missing = [line for line in IGNORED if line not in existing.splitlines()]
    if missing:
        separator = "" if not existing or existing.endswith("\n") else "\n"
        text = existing + separator + "".join(f"{line}\n" for line in missing)
        write_atomic(gitignore, text.encode("utf-8"))
        created.append(gitignore)
    return created


IGNORED = (".voicectl/", "*.journal.torn", "/state/voicectl.state.json.lock")
