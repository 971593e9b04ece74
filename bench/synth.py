"""A synthetic voice repository for the benchmarks: N voices, many declaration files.

Every take is a small but valid mono 16-bit PCM WAV of 10.5 s (inside Coze's 10-30 s),
its sample rate chosen to give the requested size (about 1,950 Hz for 40 KB: below the
16 kHz voicectl warns about, so every plan carries that warning, one grouped line, as a
repository of such takes would; 16 kHz takes would make the repository 8 times larger),
and its
content distinct per voice (the voice's index is written into the first samples of a
shared tone), so every take has its own SHA-256. Declarations are spread over
``teams`` directories of ``per_file`` voices a file, with the variety a real repository
has (explicit languages, preview texts, descriptions, an occasional protected voice).
"""

from __future__ import annotations

import math
import os
import shutil
import struct
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

SECONDS = 10.5
SPACE = "7350000000000000001"
LANGUAGES = ("en", "zh", "ja", "es", "id", "pt")
CONFIG = f"""\
# A synthetic voice repository made by bench/synth.py.
voices: ["voices/**/*.yaml"]
state: state/voicectl.state.json
defaults:
  space: "{SPACE}"
  language: en
"""


@dataclass
class Repo:
    """What was generated: paths relative to ``root``, in declaration order."""

    root: Path
    voices: int
    files: list[str] = field(default_factory=list)  # declaration files
    audio: list[list[str]] = field(default_factory=list)  # the takes of each file
    audio_bytes: int = 0

    def first(self, count: int) -> tuple[list[str], list[str]]:
        """The declaration files (and their takes) holding the first ``count`` voices."""
        files, takes, seen = [], [], 0
        for name, audio in zip(self.files, self.audio, strict=True):
            if seen >= count:
                break
            files.append(name)
            takes.extend(audio)
            seen += len(audio)
        if seen != count:
            raise ValueError(f"{count} voices do not end on a declaration file boundary")
        return files, takes


def sample_rate(audio_kb: float) -> int:
    return max(1000, round(audio_kb * 1024 / (2 * SECONDS)))


def tone(rate: int) -> bytes:
    frames = int(rate * SECONDS)
    step = 2 * math.pi * 220 / rate
    return struct.pack(f"<{frames}h", *(int(6000 * math.sin(step * k)) for k in range(frames)))


def wav_header(rate: int, data_bytes: int) -> bytes:
    return struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF",
        36 + data_bytes,
        b"WAVE",
        b"fmt ",
        16,
        1,  # PCM
        1,  # mono
        rate,
        rate * 2,
        2,
        16,
        b"data",
        data_bytes,
    )


def take(index: int, header: bytes, samples: bytes) -> bytes:
    """The shared tone with the voice's index in its first four samples: distinct bytes."""
    return header + struct.pack("<Q", index) + samples[8:]


def address(index: int) -> str:
    return f"v{index:06d}"


def declaration(index: int, audio: str) -> str:
    lines = [
        f"  {address(index)}:",
        f"    name: Synthetic voice {index}",
        f"    audio: {audio}",
        f"    text: This is take number {index} of the synthetic benchmark repository.",
    ]
    if index % 4 == 1:
        lines.append(f"    language: {LANGUAGES[index % len(LANGUAGES)]}")
    if index % 3 == 0:
        lines.append(f"    preview_text: Hello from voice {index}.")
    if index % 5 == 0:
        lines.append(f"    description: Voice {index}, read for chapter {index % 40 + 1}.")
    if index % 97 == 0:
        lines.append("    protect: true")
    return "\n".join(lines)


def make_repo(root: Path, voices: int, per_file: int = 50, audio_kb: float = 40.0) -> Repo:
    """Write a voice repository of ``voices`` voices at ``root`` (which must not exist)."""
    root.mkdir(parents=True)
    (root / "voicectl.yaml").write_text(CONFIG)
    (root / ".gitignore").write_text(".voicectl/\n")
    rate = sample_rate(audio_kb)
    samples = tone(rate)
    header = wav_header(rate, len(samples))
    repo = Repo(root, voices)
    files = math.ceil(voices / per_file)
    teams = max(1, min(20, files // 10))
    for f in range(files):
        team = f"team-{f % teams:02d}"
        name = f"voices/{team}/batch-{f // teams:04d}.yaml"
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / "audio" / team).mkdir(parents=True, exist_ok=True)
        body = ["# yaml-language-server: $schema=../../schemas/voices.schema.json", "voices:"]
        takes = []
        for i in range(f * per_file, min(voices, (f + 1) * per_file)):
            relative = f"audio/{team}/{address(i)}.wav"
            data = take(i, header, samples)
            (root / relative).write_bytes(data)
            repo.audio_bytes += len(data)
            takes.append(relative)
            body.append(declaration(i, f"../../{relative}"))
        (root / name).write_text("\n".join(body) + "\n")
        repo.files.append(name)
        repo.audio.append(takes)
    return repo


def subset(repo: Repo, count: int, dest: Path) -> Repo:
    """A repository of the first ``count`` voices, its takes hard-linked (no copies)."""
    files, takes = repo.first(count)
    dest.mkdir(parents=True)
    shutil.copyfile(repo.root / "voicectl.yaml", dest / "voicectl.yaml")
    shutil.copyfile(repo.root / ".gitignore", dest / ".gitignore")
    for name in [*files, *takes]:
        (dest / name).parent.mkdir(parents=True, exist_ok=True)
        if name.endswith(".yaml"):
            shutil.copyfile(repo.root / name, dest / name)
        else:
            os.link(repo.root / name, dest / name)
    part = Repo(dest, count, files, repo.audio[: len(files)])
    part.audio_bytes = sum((dest / t).stat().st_size for t in takes)
    return part


def git(root: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(root), *args], check=True, capture_output=True, text=True
    )
    return done.stdout


def git_commit_all(root: Path, message: str) -> None:
    """Commit the repository as a team would (a throwaway identity, no hooks)."""
    if not (root / ".git").exists():
        git(root, "init", "-q", "-b", "main")
        git(root, "config", "user.email", "bench@example.invalid")
        git(root, "config", "user.name", "voicectl bench")
        git(root, "config", "core.hooksPath", "/dev/null")
    git(root, "add", "-A")
    git(root, "commit", "-q", "--no-verify", "-m", message)
