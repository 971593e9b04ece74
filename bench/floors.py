"""The floors the benchmark divides by: the least work each voicectl command must do.

Each runs as its own process (``python bench/floors.py KIND ROOT``), so it pays for
starting Python and importing what it needs, exactly as the voicectl command it is
compared with does. Only the standard library and PyYAML are used.

    parse ROOT    stat and parse every declaration file (libyaml when present), stat
                  every take they name, read and parse the state: a warm ``plan``'s floor
    hash ROOT     SHA-256 of every take under ROOT/audio with one thread a core: the
                  machine's hashing speed, a cold ``plan``'s floor
    clone ROOT    ``parse``, plus asking git for every tracked file's object id and
                  whether the work tree is clean: a fresh-clone ``plan``'s floor
    clones ROOT BASE P
                  the clone requests an apply of ROOT into an empty state sends, P at a
                  time over one httpx client, and nothing else (no plan, no journal, no
                  state): an apply's floor against the same server
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

STATE = "state/voicectl.state.json"


def parse(root: Path) -> int:
    """Stat and parse what a plan with nothing changed must look at; returns the voices."""
    import yaml

    loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    voices = 0
    for path in sorted(root.glob("voices/**/*.yaml")):
        os.stat(path)
        data = yaml.load(path.read_bytes(), Loader=loader)
        base = posixpath.dirname(path.relative_to(root).as_posix())
        for body in data["voices"].values():
            os.stat(root / posixpath.normpath(posixpath.join(base, body["audio"])))
            voices += 1
    state = root / STATE
    if state.exists():
        json.loads(state.read_bytes())
    return voices


def _digest(path: Path) -> str:
    with open(path, "rb") as handle:
        if sys.version_info >= (3, 11):
            return hashlib.file_digest(handle, "sha256").hexdigest()
        digest = hashlib.sha256()
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
        return digest.hexdigest()


def hash_all(root: Path) -> int:
    """Hash every take with one thread a core (hashlib releases the GIL); returns bytes."""
    paths = sorted((root / "audio").rglob("*.wav"))
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        digests = list(pool.map(_digest, paths))
    if len(set(digests)) != len(paths):
        raise SystemExit("floors: two takes have the same content")
    return sum(p.stat().st_size for p in paths)


def clone(root: Path) -> int:
    voices = parse(root)
    listing = subprocess.run(
        ["git", "-C", str(root), "ls-files", "--stage", "-z"], check=True, capture_output=True
    ).stdout
    tracked = listing.count(b"\0")
    subprocess.run(["git", "-C", str(root), "diff-files", "--quiet"], check=True)
    if tracked < voices:
        raise SystemExit(f"floors: git tracks {tracked} files for {voices} voices")
    return voices


def clones(root: Path, base: str, parallelism: int) -> int:
    import httpx
    import yaml

    loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    requests = []
    for path in sorted(root.glob("voices/**/*.yaml")):
        base_dir = posixpath.dirname(path.relative_to(root).as_posix())
        for body in yaml.load(path.read_bytes(), Loader=loader)["voices"].values():
            audio = posixpath.normpath(posixpath.join(base_dir, body["audio"]))
            form = {
                "voice_name": body["name"],
                "audio_format": "wav",
                "language": body.get("language", "en"),
                "text": body["text"],
                "space_id": "7350000000000000001",
            }
            if "preview_text" in body:
                form["preview_text"] = body["preview_text"]
            requests.append((root / audio, form))
    auth = {"Authorization": "Bearer pat_bench"}
    with httpx.Client(base_url=base, timeout=600) as client:

        def send(item: tuple[Path, dict[str, str]]) -> str:
            path, form = item
            with open(path, "rb") as handle:
                reply = client.post(
                    "/v1/audio/voices/clone",
                    data=form,
                    headers=auth,
                    files={"file": (path.name, handle)},
                )
            body = reply.json()
            if reply.status_code != 200 or body.get("code") != 0:
                raise SystemExit(f"floors: clone failed: {reply.status_code} {body}")
            return str(body["data"]["voice_id"])

        with ThreadPoolExecutor(max_workers=parallelism) as pool:
            ids = list(pool.map(send, requests))
    return len(set(ids))


def main(argv: list[str]) -> None:
    kind, root = argv[0], Path(argv[1])
    if kind == "clones":
        print(clones(root, argv[2], int(argv[3])))
        return
    print({"parse": parse, "hash": hash_all, "clone": clone}[kind](root))


if __name__ == "__main__":
    main(sys.argv[1:])
