"""The CI workflows `voicectl init --ci` writes, with the voicectl they install.

The templates live in ``examples/ci/`` (a wheel carries them as ``voicectl/ci``). Each
names the voicectl CI installs in one place, a ``VOICECTL_PACKAGE`` variable holding a
pip requirement. ``init --ci`` sets it to the voicectl that runs it, as pip recorded its
source (PEP 610 ``direct_url.json``): a git URL at the exact commit, an archive URL with
its hash, or a version from a package index. A voicectl installed from a directory on
this machine is installed again from that checkout's ``origin`` at its commit, when it
has one CI can reach; otherwise the person names a source.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

from voicectl import __version__
from voicectl.declare import gitrepo
from voicectl.declare.config import DEFAULT_STATE, DEFAULT_VOICES
from voicectl.errors import UsageError
from voicectl.files.safefile import linked_part
from voicectl.files.yamlload import load_text

if TYPE_CHECKING:
    from voicectl.declare.config import Config

KINDS = {
    "github": ("github-actions.yml", ".github/workflows/voices.yml"),
    "gitlab": ("gitlab-ci.yml", ".gitlab-ci.yml"),
}
SECRETS = {
    "github": (
        "COZE_LIST_TOKEN (listVoice only) as a repository secret, and COZE_API_TOKEN "
        "(createVoice, listVoice) as a secret of the environment 'coze', deployed from "
        "main only"
    ),
    "gitlab": (
        "COZE_LIST_TOKEN (listVoice only), COZE_API_TOKEN (createVoice, listVoice; "
        "protected), GITLAB_NOTE_TOKEN (a Reporter's api token) and GITLAB_PUSH_TOKEN "
        "(api, write_repository; protected) as CI/CD variables"
    ),
}
# With the state in PostgreSQL (backend: pg): nothing is committed back.
PG_TEMPLATES = {"github": "github-actions-pg.yml", "gitlab": "gitlab-ci-pg.yml"}
PG_SECRETS = {
    "github": (
        "COZE_LIST_TOKEN and VOICECTL_PG_PLAN_CONN_STR (a role that may SELECT voicectl's "
        "tables) as repository secrets, and COZE_API_TOKEN and VOICECTL_PG_CONN_STR (a "
        "role that may write them) as secrets of the environment 'coze', deployed from "
        "main only"
    ),
    "gitlab": (
        "COZE_LIST_TOKEN, VOICECTL_PG_PLAN_CONN_STR (SELECT only), COZE_API_TOKEN and "
        "VOICECTL_PG_CONN_STR (both protected), GITLAB_NOTE_TOKEN and GITLAB_PUSH_TOKEN "
        "(api; protected) as CI/CD variables"
    ),
}
VARIABLE = "VOICECTL_PACKAGE"
_LINE = re.compile(rf'^(\s*{VARIABLE}: )"[^"\n]*"$', re.MULTILINE)


@dataclass(frozen=True)
class Source:
    """Where CI installs voicectl from, and in words, where that came from."""

    requirement: str
    origin: str


def template_dir() -> Path:
    package = Path(__file__).resolve().parents[1]  # voicectl/, in a wheel or a checkout
    for candidate in (package / "ci", package.parent / "examples" / "ci"):
        if (candidate / KINDS["github"][0]).is_file():
            return candidate
    raise FileNotFoundError("voicectl's CI templates are missing from this installation")


def installed_from(version: str, direct_url: str | None) -> Source | str:
    """The source that installs this voicectl again elsewhere, from what pip recorded;
    or, when CI cannot reach it, why not (a sentence)."""
    if direct_url is None:
        return Source(f"voicectl=={version}", "a package index")
    try:
        origin: dict[str, Any] = json.loads(direct_url)
        url = str(origin["url"])
    except (ValueError, KeyError, TypeError):
        return "pip's record of where this voicectl came from is unreadable"
    subdirectory = origin.get("subdirectory")
    fragment = f"#subdirectory={subdirectory}" if isinstance(subdirectory, str) else ""
    vcs = origin.get("vcs_info")
    if isinstance(vcs, dict):
        if vcs.get("vcs") != "git" or not vcs.get("commit_id"):
            return f"this voicectl was installed from {vcs.get('vcs')}, not git"
        commit = vcs["commit_id"]
        return Source(f"voicectl @ git+{url}@{commit}{fragment}", f"git, at commit {commit[:12]}")
    if url.startswith("file:"):
        where = Path(unquote(urlparse(url).path))
        if isinstance(origin.get("dir_info"), dict):
            return _checkout(where, fragment)
        return f"this voicectl was installed from {where}, a file CI cannot reach"
    archive = origin.get("archive_info")
    if isinstance(archive, dict):
        hashes = archive.get("hashes")
        digest = hashes.get("sha256") if isinstance(hashes, dict) else None
        pin = f"#sha256={digest}" if isinstance(digest, str) and not fragment else ""
        return Source(f"voicectl @ {url}{pin}{fragment}", "an archive")
    return f"pip's record of where this voicectl came from ({url}) names no source CI can use"


def _checkout(directory: Path, fragment: str) -> Source | str:
    """A voicectl installed from a directory: its git ``origin`` at its commit, if any."""
    commit, remote = gitrepo.head(directory), gitrepo.remote_url(directory, "origin")
    url = _pip_git_url(remote)
    top = gitrepo.top_level(directory)
    if top and not fragment and Path(top).resolve() != directory.resolve():
        fragment = f"#subdirectory={directory.resolve().relative_to(Path(top).resolve())}"
    if commit and url:
        return Source(
            f"voicectl @ git+{url}@{commit}{fragment}",
            f"your checkout's origin at its commit {commit[:12]} (push it before CI runs)",
        )
    if commit:
        return f"this voicectl was installed from {directory}, with no origin CI can reach"
    return f"this voicectl was installed from {directory}, a directory CI cannot reach"


def _pip_git_url(remote: str) -> str | None:
    """A git remote as pip's ``git+`` URL takes it, or None for one CI cannot reach.
    Credentials in it (``https://user:token@host/...``) never reach the workflow."""
    if re.match(r"^(https?|ssh|git)://", remote):
        parts = urlparse(remote)._replace(query="", params="", fragment="")  # a token's hideouts
        if parts.password is not None or (parts.username and parts.scheme.startswith("http")):
            parts = parts._replace(netloc=parts.netloc.rpartition("@")[2])
        return parts.geturl()
    scp = re.match(r"^([\w.-]+@)?([\w.-]+):(?!/)([^@:?#]+)$", remote)  # git@host:org/repo.git
    if scp:
        return f"ssh://{scp.group(1) or ''}{scp.group(2)}/{scp.group(3)}"
    return None  # a local path, a file:// URL, or one that hides more: not for CI


def this_voicectl() -> Source | str:
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        dist = distribution("voicectl")
    except PackageNotFoundError:  # run from a source tree, not installed
        return "this voicectl is not installed (run from a source tree)"
    return installed_from(__version__, dist.read_text("direct_url.json"))


def render(kind: str, requirement: str, pg: bool = False) -> str:
    """The template of ``kind`` installing ``requirement``: written as a JSON string (a
    YAML double-quoted scalar that escapes everything), then read back to be sure YAML
    takes it as exactly that."""

    name = PG_TEMPLATES[kind] if pg else KINDS[kind][0]
    text = (template_dir() / name).read_text(encoding="utf-8")
    quoted = json.dumps(requirement, ensure_ascii=True)
    rendered, count = _LINE.subn(lambda m: f"{m.group(1)}{quoted}", text)
    if count != 1:  # a template must name what it installs exactly once
        raise RuntimeError(f"the {kind} template sets {VARIABLE} {count} times, not once")
    document = load_text(rendered, KINDS[kind][0]).data
    scope = (document or {}).get("env" if kind == "github" else "variables") or {}
    if scope.get(VARIABLE) != requirement:
        raise RuntimeError(f"the {kind} workflow would not install {requirement!r}")
    return rendered


def _requirement_problem(requirement: str) -> str | None:
    """Why ``requirement`` cannot go into a workflow, or None: one printable line, no
    backslash (an escape in YAML or the shell), no quote."""
    if not requirement.strip():
        return "is empty"
    if not requirement.isprintable() or any(c in requirement for c in "\\\"'`$"):
        return (
            "holds a character a workflow would read otherwise "
            "(a control character, \\, a quote, ` or $)"
        )
    return None


def source(given: str | None) -> Source:
    """What the CI workflow installs: the requirement given, else this voicectl's source."""
    if given is not None:
        problem = _requirement_problem(given)
        if problem:
            raise UsageError(f"--ci-package {given!r} {problem}: expected a pip requirement")
        return Source(given, "--ci-package")
    found = this_voicectl()
    if isinstance(found, Source) and (problem := _requirement_problem(found.requirement)):
        found = f"where this voicectl came from ({found.requirement!r}) {problem}"
    if isinstance(found, str):
        raise UsageError(
            f"{found}: pass --ci-package with a pip requirement CI can install, e.g. "
            f"'voicectl @ git+https://git.example.com/tools/voicectl@v{__version__}'"
        )
    return found


def workflows(
    directory: Path, kinds: tuple[str, ...], requirement: str, *, pg: bool = False
) -> dict[Path, str]:
    """The workflow file of each kind in ``directory``, refusing one that exists."""

    found = {}
    for kind in kinds:
        path = directory / KINDS[kind][1]
        link = linked_part(directory, path)
        if link is not None:
            raise UsageError(f"{link} is a symbolic link; init writes no file through one")
        if os.path.lexists(path):
            raise UsageError(f"{path} already exists; nothing was changed")
        found[path] = render(kind, requirement, pg)
    return found


def cautions(directory: Path, cfg: Config | None, kinds: tuple[str, ...] = ()) -> list[str]:
    """What would keep a workflow written in ``directory`` (a voice repository with the
    config ``cfg``, or a new one) from running as it should."""

    said = []
    probe = directory
    while not probe.exists() and probe != probe.parent:  # a new repository: not made yet
        probe = probe.parent
    top = gitrepo.top_level(probe)
    branch = gitrepo.branch(probe)
    if "github" in kinds and branch and branch != "main":
        said.append(
            f"the GitHub workflow applies on pushes to main, and this repository is on "
            f"{branch}: edit its `branches: [main]` if {branch} is where merges land"
        )
    if top and Path(top).resolve() != directory.resolve():
        said.append(
            f"{directory} is not the top of its git repository ({top}): GitHub reads "
            "workflows and GitLab reads .gitlab-ci.yml only there; move the file, and its "
            "paths, to the top"
        )
    other = (tuple(cfg.voices), cfg.state) != (DEFAULT_VOICES, DEFAULT_STATE) if cfg else False
    if cfg is not None and cfg.pg is None and other:  # the PostgreSQL variant adds no state/
        said.append(
            "voicectl.yaml names other declaration files or another state than "
            f"{DEFAULT_VOICES[0]} and {DEFAULT_STATE}: edit the workflow's paths (its "
            "triggers and `git add state/`) to match"
        )
    return said
