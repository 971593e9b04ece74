"""Building a review: the plan's takes gathered, pictured and measured, the page written
into a folder of its own (or one file), whole or not at all."""

from __future__ import annotations

import base64
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path

from voicectl.declare import config
from voicectl.errors import UsageError
from voicectl.files.atomic import write_atomic
from voicectl.model import Action, Change, Plan, State, TakeVerdict, VoiceRecord
from voicectl.review import folder, heard, page, takes

SINGLE_FILE_LIMIT = 50 * 1024 * 1024  # data: URIs of more make a page browsers choke on
MEDIA_TYPES = {
    "wav": "audio/wav",
    "mp3": "audio/mpeg",
    "ogg": "audio/ogg",
    "m4a": "audio/mp4",
    "aac": "audio/aac",
    "pcm": "application/octet-stream",
    "svg": "image/svg+xml",
    "png": "image/png",
}


def wanted(plan: Plan, state: State) -> Iterator[takes.Wanted]:
    """Every take the page shows: each change's new take, and the one it is trained on
    now (from git, by the blob id the state records)."""
    records = {r.voice_id: r for r in (*state.voices.values(), *state.orphans)}
    for change in plan.changes:
        if change.action == Action.NOOP:
            continue
        if change.after is not None and change.spends_clone:
            yield takes.Wanted(change.after.audio)
        if change.before is not None:
            yield _old(change, records.get(change.voice_id or ""))


def _old(change: Change, record: VoiceRecord | None) -> takes.Wanted:
    assert change.before is not None
    spec = change.before.audio
    if record is None or record.take.sha256 != spec.sha256:
        return takes.Wanted(spec, unavailable="the state does not say where it was kept")
    if not record.verified:
        return takes.Wanted(spec, unavailable="an imported voice: its take is not known")
    if not record.take.git_blob:
        return takes.Wanted(spec, unavailable="it was never committed while recorded")
    return takes.Wanted(spec, blob=record.take.git_blob)


def write(
    cfg: config.Config,
    plan: Plan,
    state: State,
    out: Path,
    *,
    policy: Sequence[str],
    source: str,
    single_file: bool = False,
) -> Path:
    """The review of ``plan`` in ``out`` (a folder; with ``single_file``, one HTML file),
    made aside and moved into place at the end; returns the page's path. Only a review
    voicectl wrote is ever replaced."""
    _refuse_target(cfg.root, out, single_file)
    _refuse_repository_file(cfg, out, single_file)
    parent = out.parent
    parent.mkdir(parents=True, exist_ok=True)
    with folder.working(parent) as made:
        shown = takes.gather(cfg.root, made, wanted(plan, state), cfg.takes)
        for sha, verdict in plan.takes.items():  # the plan's, with validate's warnings too
            own = shown[sha].verdict if sha in shown else None
            if own is not None:
                merged = tuple(dict.fromkeys([*verdict.warnings, *own.warnings]))
                shown[sha].verdict = TakeVerdict(own.figures, merged)
        sounds = heard.gather(cfg.root, made, plan, state)
        review = page.Review(plan, shown, policy, source, heard=sounds)
        if single_file:
            inline = _inliner(made)
            write_atomic(out, page.html(_with(review, inline)).encode())
            return out
        (made / "index.html").write_text(page.html(review), encoding="utf-8")
        folder.seal(made)
        folder.replace(made, out)
    return out / "index.html"


def _refuse_target(root: Path, out: Path, single_file: bool) -> None:
    """Refuse an output that is not a review's: a file or folder of something else, the
    repository itself, or one of its parents."""
    if out.is_symlink():
        raise UsageError(f"{out} is a symbolic link: name a folder of its own for the review")
    where, top = out.resolve(), root.resolve()
    if where == top or top.is_relative_to(where) or ".git" in where.relative_to(where.anchor).parts:
        raise UsageError(f"{out} holds the repository: name a folder of its own for the review")
    if single_file:
        if out.is_dir():
            raise UsageError(f"{out} is a folder: --single-file writes one file; name it")
        if out.exists() and not _is_review_page(out):
            raise UsageError(f"{out} exists and is not a review page: it is not written over")
    elif out.exists() and not out.is_dir():
        raise UsageError(f"{out} is a file, not a folder: name a folder for the review")


def _refuse_repository_file(cfg: config.Config, out: Path, single_file: bool) -> None:
    """A review is never written where the repository keeps its own files, even before
    they exist: the state, its journal and lock, the configuration, .voicectl/ (a page
    or folder there would be read as a corrupt journal, a state that is a directory).
    A single-file review is an .html file: never a declaration or a take."""
    where, top = out.resolve(), cfg.root.resolve()
    state = cfg.state_path.resolve()
    own = {state, state.with_name(state.name + ".journal"), state.with_name(state.name + ".lock")}
    own.add(top / config.CONFIG_FILE)
    inside = where.is_relative_to(top) and ".voicectl" in where.relative_to(top).parts
    if where in own or inside:
        raise UsageError(
            f"{out} is where voicectl keeps the state, its journal or lock, the "
            "configuration or its own files: name another place for the review"
        )
    if single_file and where.suffix.lower() not in (".html", ".htm"):
        raise UsageError(f"{out}: a single-file review is an .html file; name one")


def _is_review_page(path: Path) -> bool:
    try:
        with open(path, "rb") as handle:
            return page.GENERATOR.encode() in handle.read(4096)
    except OSError:
        return False


def _with(review: page.Review, inline: page.Inline) -> page.Review:
    return replace(review, inline=inline)


def _inliner(folder: Path) -> page.Inline:
    budget = [SINGLE_FILE_LIMIT]

    def inline(path: str) -> str:
        data = (folder / path).read_bytes()
        budget[0] -= len(data) * 4 // 3
        if budget[0] < 0:
            raise UsageError(
                f"the takes are too large for one file (over {SINGLE_FILE_LIMIT // 2**20} MB "
                "as data: URIs): write a folder instead (without --single-file)"
            )
        kind = MEDIA_TYPES.get(path.rsplit(".", 1)[-1], "application/octet-stream")
        return f"data:{kind};base64,{base64.b64encode(data).decode()}"

    return inline
