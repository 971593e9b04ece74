"""The CI templates and the pre-commit hook parse, and call only commands and flags
that voicectl has (checked against the click command tree, not a hand-kept list)."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
import yaml

from voicectl.cli import cli

PROJECT = Path(__file__).resolve().parent.parent
TEMPLATES = [
    PROJECT / "examples" / "ci" / "github-actions.yml",
    PROJECT / "examples" / "ci" / "gitlab-ci.yml",
    PROJECT / ".pre-commit-hooks.yaml",
]
SHELL_BREAKS = {"|", "||", "&&", ";", ">", ">>", "<", "2>", "2>&1"}


def scripts(node: Any) -> Iterator[str]:
    """Every string in the document that could be a shell script or an entry point."""
    if isinstance(node, dict):
        for value in node.values():
            yield from scripts(value)
    elif isinstance(node, list):
        for value in node:
            yield from scripts(value)
    elif isinstance(node, str):
        yield node


def invocations(text: str) -> Iterator[list[str]]:
    """The argument lists of every `voicectl ...` command in a script."""
    for line in text.replace("\\\n", " ").splitlines():
        for match in re.finditer(r"(?<![\w./=-])voicectl\s+[a-z]", line):
            words = shlex.split(line[match.start() :], comments=True, posix=True)
            args = []
            for word in words[1:]:
                if word in SHELL_BREAKS or word.startswith((">", "2>")):
                    break
                args.append(word)
            yield args


def check(args: list[str]) -> None:
    """Resolve args through the command tree; every option must exist where it is used."""
    command: click.Command = cli
    ctx = click.Context(cli)
    rest = list(args)
    while isinstance(command, click.Group) and rest and not rest[0].startswith("-"):
        name = rest.pop(0)
        sub = command.get_command(ctx, name)
        assert sub is not None, f"voicectl has no command {name!r} (in {args})"
        command = sub
    known = {opt for p in command.params for opt in (*p.opts, *p.secondary_opts)}
    known |= {"--help", "-h"}
    for word in rest:
        if word.startswith("-") and word != "-":
            flag = word.split("=", 1)[0]
            assert flag in known, f"voicectl {command.name} has no option {flag} (in {args})"


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: p.name)
def test_template_parses_and_calls_only_real_commands_and_flags(path: Path) -> None:
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    calls = [args for text in scripts(document) for args in invocations(text)]
    assert calls, f"{path.name} calls voicectl nowhere"
    for args in calls:
        check(args)


def test_the_workflows_plan_on_review_and_apply_exactly_the_reviewed_plan() -> None:
    calls = {
        path.name: [
            " ".join(a) for t in scripts(yaml.safe_load(path.read_text())) for a in invocations(t)
        ]
        for path in TEMPLATES[:2]
    }
    for name, found in calls.items():
        assert any(c.startswith("plan --out plan.json") for c in found), name
        assert any(c.startswith("show plan.json --format markdown") for c in found), name
        assert any(c.startswith("apply plan.json") for c in found), name
        assert not any(c.startswith("apply") and "--auto-approve" in c for c in found), name


def test_the_checker_catches_a_flag_that_does_not_exist() -> None:
    with pytest.raises(AssertionError, match="no option --yolo"):
        check(["apply", "--yolo"])
    with pytest.raises(AssertionError, match="no command 'deploy'"):
        check(["deploy"])
    check(["state", "mv", "a", "b"])
