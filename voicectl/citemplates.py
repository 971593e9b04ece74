"""The CI templates `voicectl init --ci` writes, with the voicectl they install.

The templates live in ``examples/ci/`` (a wheel carries them as ``voicectl/ci``). Each
names the voicectl CI installs in one place, a ``VOICECTL_PACKAGE`` variable holding a
pip requirement. ``init --ci`` sets it to the voicectl that runs it, as pip recorded its
source (PEP 610 ``direct_url.json``): a git URL at the exact commit, an archive URL, or
a version from a package index. A voicectl installed from a local directory has no
source CI can reach; then the person names one.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from voicectl import __version__
from voicectl.errors import ConfigError

KINDS = {
    "github": ("github-actions.yml", ".github/workflows/voices.yml"),
    "gitlab": ("gitlab-ci.yml", ".gitlab-ci.yml"),
}
VARIABLE = "VOICECTL_PACKAGE"
_LINE = re.compile(rf'^(\s*{VARIABLE}: )"[^"\n]*"$', re.MULTILINE)


def template_dir() -> Path:
    here = Path(__file__).resolve().parent
    for candidate in (here / "ci", here.parent / "examples" / "ci"):
        if (candidate / KINDS["github"][0]).is_file():
            return candidate
    raise FileNotFoundError("voicectl's CI templates are missing from this installation")


def installed_from(version: str, direct_url: str | None) -> str | None:
    """The pip requirement that installs this voicectl again elsewhere, from what pip
    recorded of its source; None when that source is this machine's alone."""
    if direct_url is None:  # from a package index
        return f"voicectl=={version}"
    try:
        origin = json.loads(direct_url)
        url = str(origin["url"])
    except (ValueError, KeyError, TypeError):
        return None
    if url.startswith("file:"):
        return None
    vcs = origin.get("vcs_info")
    if isinstance(vcs, dict) and vcs.get("vcs") == "git" and vcs.get("commit_id"):
        return f"voicectl @ git+{url}@{vcs['commit_id']}"
    if "archive_info" in origin:
        return f"voicectl @ {url}"
    return None


def this_voicectl() -> str | None:
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        dist = distribution("voicectl")
    except PackageNotFoundError:  # run from a source tree, not installed
        return None
    return installed_from(__version__, dist.read_text("direct_url.json"))


def render(kind: str, package: str) -> str:
    """The template of ``kind`` installing ``package``."""
    if '"' in package or "\n" in package or not package.strip():
        raise ConfigError(f"--ci-package {package!r}: expected a pip requirement on one line")
    text = (template_dir() / KINDS[kind][0]).read_text(encoding="utf-8")
    rendered, count = _LINE.subn(lambda m: f'{m.group(1)}"{package}"', text)
    if count != 1:  # a template must name what it installs exactly once
        raise FileNotFoundError(f"the {kind} template sets {VARIABLE} {count} times, not once")
    return rendered


def package_for_ci(given: str | None) -> str:
    """What the CI template installs: the one given, else this voicectl's own source."""
    if given is not None:
        return given
    found = this_voicectl()
    if found is None:
        raise ConfigError(
            "this voicectl was installed from a directory on this machine, which CI "
            "cannot reach: pass --ci-package with a pip requirement CI can install, e.g. "
            "'voicectl @ git+https://git.example.com/tools/voicectl@v" + __version__ + "'"
        )
    return found
