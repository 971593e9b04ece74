"""Audio voicectl keeps under ``.voicectl/``: speech it paid for, and voices' snapshots.

- ``.voicectl/speech/<key>/``: one speech, filed under the sha256 of what was asked of
  which voice at which training (``voicectl speak`` serves a repeat from it, free).
- ``.voicectl/snapshots/<voice_id>/<clone>/``: how a voice sounded at that training
  (its preview, and a reference sentence), kept by apply around a retrain, since the
  retrain overwrites the voice and nothing on Coze keeps the old one.

Each directory holds its audio files and ``sound.json``: what the audio is, each file's
sha256, and a seal, an HMAC of all that by this machine's key (:func:`machine_key`). A
pull request can add files under ``.voicectl/`` (``git add -f``), and a made-up snapshot
would have a reviewer hear a voice that never was: only what this machine sealed for
the directory it sits in (a copy elsewhere is not what it claims), with every file its
sha256, is ever served or shown. Nothing is read or written through
a link, and ``sound.json`` is written last: a directory without it holds nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from pathlib import Path
from typing import Any

from voicectl.errors import StateError
from voicectl.files import jsontext, safefile
from voicectl.files.atomic import write_atomic
from voicectl.files.cache import ignore_in_git, machine_key

SPEECH = Path(".voicectl") / "speech"
SNAPSHOTS = Path(".voicectl") / "snapshots"
META = "sound.json"
KIND = "voicectl-sound"
MAX_AUDIO_BYTES = 128 * 1024 * 1024  # above any speech voicectl accepts (96 MiB)
_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")
_VOICE_ID = re.compile(r"[0-9]{1,32}")


def speech_dir(root: Path, key: str) -> Path:
    return root / SPEECH / key


def snapshot_dir(root: Path, voice_id: str, clone: int) -> Path:
    if not _VOICE_ID.fullmatch(voice_id) or not 1 <= clone <= 99:
        raise StateError(f"no snapshot can be kept for voice {voice_id!r}, clone {clone}")
    return root / SNAPSHOTS / voice_id / str(clone)


def put(root: Path, directory: Path, files: dict[str, bytes], meta: dict[str, Any]) -> None:
    """Keep ``files`` (name: bytes) in ``directory`` with ``meta``; files kept there
    before and still sealed stay listed. Durable: a snapshot is the only copy."""
    check_dirs(root, directory)
    kept = read(root, directory)
    listed = dict(kept[0]["files"]) if kept else {}
    for name, audio in files.items():
        if not _NAME.fullmatch(name):
            raise StateError(f"{name!r} is not a name voicectl keeps audio under")
        write_atomic(directory / name, audio)
        listed[name] = hashlib.sha256(audio).hexdigest()
    body = {**meta, "kind": KIND, "files": listed, "where": _where(root, directory)}
    ignore_in_git(root / ".voicectl")
    write_atomic(directory / META, jsontext.dumps({**body, "seal": _seal(body)}))


def read(root: Path, directory: Path) -> tuple[dict[str, Any], dict[str, bytes]] | None:
    """``sound.json`` and its files' bytes, when this machine sealed it and every file is
    there with its sha256; else None (missing, torn, foreign or edited)."""
    try:
        check_dirs(root, directory)
        body = jsontext.loads(safefile.read_bytes(directory / META, limit=1 << 20))
    except (OSError, ValueError, StateError):
        return None
    if not isinstance(body, dict) or body.get("kind") != KIND:
        return None
    seal = body.pop("seal", None)
    expected = _seal(body)
    if not isinstance(seal, str) or expected is None or not hmac.compare_digest(seal, expected):
        return None
    files = body.get("files")
    if not isinstance(files, dict) or body.get("where") != _where(root, directory):
        return None  # sealed here, for another place: a copy is not what it claims
    found = {}
    for name, sha256 in files.items():
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            return None
        try:
            data = safefile.read_bytes(directory / name, limit=MAX_AUDIO_BYTES)
        except (OSError, StateError):
            return None
        if hashlib.sha256(data).hexdigest() != sha256:
            return None
        found[name] = data
    return body, found


def snapshots(root: Path, voice_id: str) -> dict[int, tuple[dict[str, Any], dict[str, bytes]]]:
    """Every sealed snapshot of a voice, by clone number."""
    found: dict[int, tuple[dict[str, Any], dict[str, bytes]]] = {}
    if not _VOICE_ID.fullmatch(voice_id):
        return found
    base = root / SNAPSHOTS / voice_id
    try:
        check_dirs(root, base)
        names = [p.name for p in base.iterdir()] if base.is_dir() else []
    except (OSError, StateError):
        return found
    for name in names:
        if name.isdigit() and 1 <= int(name) <= 99:
            kept = read(root, base / name)
            if kept is not None:
                found[int(name)] = kept
    return dict(sorted(found.items()))


def _seal(body: dict[str, Any]) -> str | None:
    key = machine_key()
    if key is None:
        return None
    return hmac.new(key, jsontext.dumps(body), hashlib.sha256).hexdigest()


def _where(root: Path, directory: Path) -> str:
    return directory.relative_to(root).as_posix()


def check_place(root: Path, directory: Path, names: tuple[str, ...]) -> None:
    """``directory`` can hold ``names`` and ``sound.json``: real directories down to it,
    and each name free or a regular file (a directory or a link planted there would
    only be found when writing, after the sound was paid for)."""
    check_dirs(root, directory)
    for name in (*names, META):
        path = directory / name
        if path.is_symlink() or (path.exists() and not path.is_file()):
            raise StateError(f"{path}: is a link or not a regular file: remove it")


def check_dirs(root: Path, directory: Path) -> None:
    """Every directory from ``.voicectl/`` down to ``directory`` is a real one (or not
    there yet): a link would send reads or writes out of the repository."""
    linked = safefile.linked_part(root, directory)
    if linked is not None:
        raise StateError(f"{linked}: is a link; voicectl keeps audio only in real directories")
    here = root
    for part in directory.relative_to(root).parts:
        here = here / part
        if here.exists() and not here.is_dir():
            raise StateError(f"{here}: is not a directory; voicectl keeps audio in one")
