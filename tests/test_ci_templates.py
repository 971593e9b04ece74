"""The CI templates and the pre-commit hook parse, and call only commands and flags
that voicectl has (checked against the click command tree, not a hand-kept list)."""

from __future__ import annotations

import re
import shlex
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
import yaml

from voicectl import __version__
from voicectl.cli import cli

PROJECT = Path(__file__).resolve().parent.parent
TEMPLATES = [
    PROJECT / "examples" / "ci" / "github-actions.yml",
    PROJECT / "examples" / "ci" / "gitlab-ci.yml",
    PROJECT / "examples" / "ci" / "github-actions-pg.yml",
    PROJECT / "examples" / "ci" / "gitlab-ci-pg.yml",
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
        plans = [c for c in found if c.startswith("plan --out plan.json")]
        assert plans and all("--format markdown" in c for c in plans), name  # the comment
        assert any(c.startswith("apply plan.json") for c in found), name
        assert not any(c.startswith("apply") and "--auto-approve" in c for c in found), name


def test_the_checker_catches_a_flag_that_does_not_exist() -> None:
    with pytest.raises(AssertionError, match="no option --yolo"):
        check(["apply", "--yolo"])
    with pytest.raises(AssertionError, match="no command 'deploy'"):
        check(["deploy"])
    check(["state", "mv", "a", "b"])


@pytest.mark.parametrize("path", TEMPLATES[:2], ids=lambda p: p.name)
def test_a_template_names_the_voicectl_it_installs_once_at_this_version(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.count(f'VOICECTL_PACKAGE: "voicectl=={__version__}"') == 1
    installs = re.findall(r"pip install[^\n]*", text)
    assert installs and all(line.endswith('"${VOICECTL_PACKAGE}"') for line in installs)


COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.mark.parametrize(
    ("direct_url", "requirement"),
    [
        (None, f"voicectl=={__version__}"),  # from a package index
        (
            '{"url": "https://git.example.com/tools/voicectl.git", "vcs_info": '
            f'{{"vcs": "git", "commit_id": "{COMMIT}", "requested_revision": "v0.1.0"}}}}',
            f"voicectl @ git+https://git.example.com/tools/voicectl.git@{COMMIT}",  # not the tag
        ),
        (
            '{"url": "https://git.example.com/mono.git", "subdirectory": "tools/voicectl", '
            f'"vcs_info": {{"vcs": "git", "commit_id": "{COMMIT}"}}}}',
            f"voicectl @ git+https://git.example.com/mono.git@{COMMIT}#subdirectory=tools/voicectl",
        ),
        (
            '{"url": "https://files.example.com/voicectl-0.1.0-py3-none-any.whl", '
            '"archive_info": {"hashes": {"sha256": "ab12"}}}',
            "voicectl @ https://files.example.com/voicectl-0.1.0-py3-none-any.whl#sha256=ab12",
        ),
        ('{"url": "https://hg.example.com/v", "vcs_info": {"vcs": "hg", "commit_id": "1"}}', None),
        ('{"url": "file:///tmp/voicectl-0.1.0-py3-none-any.whl", "archive_info": {}}', None),
        ("not json", None),
    ],
)
def test_ci_installs_voicectl_from_where_pip_installed_it(
    direct_url: str | None, requirement: str | None
) -> None:
    from voicectl.declare.citemplates import installed_from

    found = installed_from(__version__, direct_url)
    if requirement is None:
        assert isinstance(found, str)  # why CI cannot install it: said to the person
    else:
        assert not isinstance(found, str) and found.requirement == requirement


def _checkout(path: Path, origin: str | None) -> str:
    import subprocess

    git = ["git", "-C", str(path), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    (path / "tools" / "voicectl").mkdir(parents=True)
    (path / "tools" / "voicectl" / "pyproject.toml").write_text("")
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "c"], check=True)
    if origin is not None:
        subprocess.run([*git, "remote", "add", "origin", origin], check=True)
    head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True)
    return head.stdout.strip()


@pytest.mark.parametrize(
    ("origin", "url"),
    [
        ("https://git.example.com/tools/mono.git", "https://git.example.com/tools/mono.git"),
        ("git@git.example.com:tools/mono.git", "ssh://git@git.example.com/tools/mono.git"),
        # A token in the remote's URL never reaches the workflow.
        ("https://ci:glpat-SECRET@git.example.com/mono.git", "https://git.example.com/mono.git"),
        ("/srv/git/mono.git", None),  # a path on this machine: CI cannot reach it
        (None, None),
    ],
)
def test_an_editable_install_is_installed_again_from_its_checkouts_origin(
    tmp_path: Path, origin: str | None, url: str | None
) -> None:
    import json

    from voicectl.declare.citemplates import installed_from

    commit = _checkout(tmp_path, origin)
    where = tmp_path / "tools" / "voicectl"
    record = json.dumps({"url": where.as_uri(), "dir_info": {"editable": True}})
    found = installed_from(__version__, record)
    if url is None:
        assert isinstance(found, str) and str(where) in found
    else:
        assert not isinstance(found, str)
        assert found.requirement == f"voicectl @ git+{url}@{commit}#subdirectory=tools/voicectl"
        assert "SECRET" not in found.requirement + found.origin


def test_init_ci_writes_workflows_that_install_the_package_named(tmp_path: Path, run) -> None:
    package = "voicectl @ git+https://git.example.com/tools/voicectl.git@v9"
    made = run(tmp_path, "init", "--ci", "github", "--ci-package", package)
    assert made.exit_code == 0, made.output
    workflow = tmp_path / ".github" / "workflows" / "voices.yml"
    document = yaml.safe_load(workflow.read_text())
    assert document["env"]["VOICECTL_PACKAGE"] == package
    assert (tmp_path / "voicectl.yaml").is_file() and f"CI installs {package}" in made.output
    assert "For github, set COZE_LIST_TOKEN (listVoice only)" in made.output
    # In an existing voice repository, --ci adds only the workflow; never over one.
    again = run(tmp_path, "init", "--ci", "gitlab", "--ci-package", package)
    assert again.exit_code == 0, again.output
    assert "GITLAB_PUSH_TOKEN" in again.output and "Next:" not in again.output
    assert (
        yaml.safe_load((tmp_path / ".gitlab-ci.yml").read_text())["variables"]["VOICECTL_PACKAGE"]
        == package
    )
    before = workflow.read_bytes()
    refused = run(tmp_path, "init", "--ci", "github", "--ci-package", "voicectl==9")
    assert refused.exit_code == 1 and "already exists; nothing was changed" in refused.output
    assert workflow.read_bytes() == before
    ignored = run(tmp_path, "init", "--ci", "github", "--space", "1", "--ci-package", package)
    assert ignored.exit_code == 1 and "set defaults in voicectl.yaml" in ignored.output


@pytest.mark.parametrize(
    ("kind", "path"), [("github", ".github/workflows/voices.yml"), ("gitlab", ".gitlab-ci.yml")]
)
def test_init_ci_on_postgresql_writes_the_variant_that_commits_nothing_back(
    tmp_path: Path, run, kind: str, path: str
) -> None:
    """With backend: pg the state is the database's: the workflow reads the connection
    from secrets, waits for another runner's lock, and never commits a state file."""
    package = "voicectl==9.9"
    assert run(tmp_path, "init").exit_code == 0
    config = tmp_path / "voicectl.yaml"
    config.write_text(config.read_text() + "backend:\n  pg:\n    schema: voices\n")
    made = run(tmp_path, "init", "--ci", kind, "--ci-package", package)
    assert made.exit_code == 0, made.output
    assert "VOICECTL_PG_CONN_STR" in made.output and "VOICECTL_PG_PLAN_CONN_STR" in made.output
    text = (tmp_path / path).read_text()
    assert "git add state/" not in text and "git push" not in text
    assert "VOICECTL_PG_CONN_STR" in text and "--lock-timeout" in text
    assert "psycopg" in text and package in text


def test_init_ci_warns_where_the_workflow_would_not_run(tmp_path: Path, run) -> None:
    _checkout(tmp_path, None)
    fresh = run(tmp_path, "init", "new-repo", "--ci", "github", "--ci-package", "voicectl==9")
    assert fresh.exit_code == 0 and "is not the top of its git repository" in fresh.stderr
    subprocess.run(["git", "-C", str(tmp_path), "branch", "-M", "master"], check=True)
    other = run(tmp_path, "init", "on-master", "--ci", "github", "--ci-package", "voicectl==9")
    assert "this repository is on master: edit its `branches: [main]`" in other.stderr
    below = tmp_path / "voices-repo"
    below.mkdir()
    made = run(below, "init", ".", "--ci", "github", "--ci-package", "voicectl==9")
    assert made.exit_code == 0, made.output
    assert "is not the top of its git repository" in made.stderr
    (below / "voicectl.yaml").write_text("state: other/state.json\n")
    (below / ".github" / "workflows" / "voices.yml").unlink()
    again = run(below, "init", ".", "--ci", "github", "--ci-package", "voicectl==9")
    assert "edit the workflow's paths" in again.stderr


def test_init_ci_without_a_source_ci_can_reach_says_what_to_pass(tmp_path: Path, run) -> None:
    from voicectl.declare.citemplates import this_voicectl

    if not isinstance(this_voicectl(), str):
        pytest.skip("this voicectl was installed from a source CI can reach")
    made = run(tmp_path, "init", "--ci", "github")
    assert made.exit_code == 1 and "pass --ci-package" in made.output
    assert not any(tmp_path.iterdir())  # nothing written


# --- the plan jobs' shell, run with a stand-in voicectl --------------------------------


def _stubs(tmp_path: Path, code: int) -> dict[str, str]:
    """A PATH whose voicectl prints a plan comment and exits ``code``; curl and jq answer
    as for a pull request with no comment yet."""
    import os

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    scripts = {
        "voicectl": '[ "$1" = validate ] && exit 0\n[ "$1" = review ] && exit 0\n'
        f'echo "**Plan: stub**"\nexit {code}\n',
        "curl": 'case "$*" in *PUT*|*POST*) cat > /dev/null ;; *) echo "[]" ;; esac\n',
        "jq": 'cat > /dev/null\ncase "$*" in *-Rs*) echo "{}" ;; *) echo "" ;; esac\n',
    }
    for name, body in scripts.items():
        path = bin_dir / name
        path.write_text("#!/bin/sh\n" + body)
        path.chmod(0o755)
    return {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}


def _if_holds(expression: str, outputs: dict[str, str]) -> bool:
    """A GitHub ``if:`` over ``steps.plan.outputs`` comparisons joined by && or ||."""

    def term(text: str) -> bool:
        name, op, value = re.fullmatch(
            r"\s*steps\.plan\.outputs\.(\w+) (==|!=) '([^']*)'\s*", text
        ).groups()  # type: ignore[union-attr]
        return (outputs.get(name, "") == value) == (op == "==")

    return any(all(term(t) for t in part.split("&&")) for part in expression.split("||"))


@pytest.mark.parametrize("code", [0, 1, 2, 3])
def test_the_github_plan_job_passes_only_on_0_and_2_and_always_comments(
    tmp_path: Path, code: int
) -> None:
    import subprocess

    steps = yaml.safe_load(TEMPLATES[0].read_text())["jobs"]["plan"]["steps"]
    plan = next(s for s in steps if s.get("id") == "plan")
    outputs = tmp_path / "outputs"
    env = {**_stubs(tmp_path, code), "GITHUB_OUTPUT": str(outputs)}
    done = subprocess.run(  # GitHub's own shell for run: bash -eo pipefail
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", plan["run"]],
        cwd=tmp_path,
        env=env,
    )
    assert done.returncode == 0  # the step records the code; later steps decide
    got = dict(line.split("=", 1) for line in outputs.read_text().splitlines())
    ran = {s.get("name") or s.get("uses"): _if_holds(s["if"], got) for s in steps if "if" in s}
    assert ran["Upload the plan"] == (code in (0, 2))  # only a plan to apply
    assert ran["Build the review page"] == ran["Upload the review page"] == (code == 2)
    assert ran["Post or update the plan comment"]  # the reviewer always sees the plan
    assert ran["Fail when the plan cannot be carried out"] == (code not in (0, 2))


@pytest.mark.parametrize("code", [0, 1, 2, 3])
def test_the_gitlab_plan_job_passes_only_on_0_and_2(tmp_path: Path, code: int) -> None:
    import subprocess

    job = yaml.safe_load(TEMPLATES[1].read_text())["voicectl-plan"]
    script = "\n".join(job["script"])  # GitLab runs a job's lines in one shell
    done = subprocess.run(
        ["bash", "-eo", "pipefail", "-c", script], cwd=tmp_path, env=_stubs(tmp_path, code)
    )
    assert (done.returncode == 0) == (code in (0, 2))
    comment = (tmp_path / "plan.md").read_text()
    assert comment.startswith("**Plan: stub**\n")
    assert ("[Hear the takes: the review page]" in comment) == (code == 2)


def test_the_apply_jobs_take_the_plan_of_the_merged_commit_and_keep_the_state() -> None:
    """A branch name can be a fork's too: the reviewed plan is found by the merged head
    commit. The state is pushed onto whatever reached the branch meanwhile, in the job's
    script (GitLab ignores after_script's failures), and a token that spends money is
    never in a pull request's job."""
    github = yaml.safe_load(TEMPLATES[0].read_text())["jobs"]
    find = next(s for s in github["apply"]["steps"] if s.get("name", "").startswith("Find"))
    assert "head_sha=${head}" in find["run"] and "--branch" not in find["run"]
    commit = next(s for s in github["apply"]["steps"] if s.get("name") == "Commit the state back")
    assert "git pull --rebase" in commit["run"]
    assert github["apply"]["environment"] == "coze"
    plan_env = [s.get("env", {}) for s in github["plan"]["steps"]]
    assert {"COZE_API_TOKEN": "${{ secrets.COZE_LIST_TOKEN }}"} in plan_env
    gitlab = yaml.safe_load(TEMPLATES[1].read_text())
    apply = gitlab["voicectl-apply"]
    script = "\n".join(apply["script"])
    assert "after_script" not in apply and "git pull --rebase" in script
    assert ".sha == $head" in script and "ci.skip" in script and script.endswith('exit "$code"')
    assert gitlab["voicectl-plan"]["variables"]["COZE_API_TOKEN"] == "$COZE_LIST_TOKEN"


@pytest.mark.parametrize(
    "package",
    [
        "voicectl==0.2.0\\",  # would end the YAML string's quoting
        "voicectl==0.2.0\r--index-url=http://evil.example",  # a CR hides the rest on a terminal
        "voicectl==0.2.0\x85x",  # a line break to YAML
        'voicectl==0.2.0"\n  EVIL: "x',  # a new key
        "voicectl @ https://h.example/v.tar.gz#sha256=\\x41",  # an escape YAML would read
        "",
    ],
)
def test_init_ci_refuses_a_requirement_a_workflow_would_read_otherwise(
    tmp_path: Path, run, package: str
) -> None:
    made = run(tmp_path, "init", "--ci", "github", "--ci-package", package)
    assert made.exit_code == 1 and "--ci-package" in made.output
    assert not any(tmp_path.iterdir()) and "Traceback" not in made.output


@pytest.mark.parametrize(
    ("origin", "url"),
    [
        ("https://h.example/r.git?private_token=glpat-SECRET", "https://h.example/r.git"),
        ("https://h.example/r.git#glpat-SECRET", "https://h.example/r.git"),
        ("user:ghp_SECRET@github.com:o/r.git", None),  # not the scp form git@host:path
        ('https://h.example/r.git"\n  EVIL: "x', None),  # refused, never written
    ],
)
def test_a_remote_that_hides_a_token_or_yaml_never_reaches_the_workflow(
    tmp_path: Path, origin: str, url: str | None
) -> None:
    import json

    from voicectl.declare.citemplates import _requirement_problem, installed_from

    commit = _checkout(tmp_path, origin)
    where = tmp_path / "tools" / "voicectl"
    found = installed_from(__version__, json.dumps({"url": where.as_uri(), "dir_info": {}}))
    if url is None:  # said why not, or refused before anything is written
        assert isinstance(found, str) or _requirement_problem(found.requirement) is not None
        return
    assert not isinstance(found, str)
    assert found.requirement == f"voicectl @ git+{url}@{commit}#subdirectory=tools/voicectl"
    assert "SECRET" not in found.requirement


def test_init_writes_no_file_through_a_symbolic_link(tmp_path: Path, run) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / ".github").symlink_to(outside)
    made = run(repo, "init", "--ci", "github", "--ci-package", "voicectl==9")
    assert made.exit_code == 1 and "is a symbolic link" in made.output
    assert not any(outside.iterdir()) and not (repo / "voicectl.yaml").exists()
    (repo / ".github").unlink()
    (repo / ".gitlab-ci.yml").symlink_to(outside / "gone.yml")  # dangling
    again = run(repo, "init", "--ci", "gitlab", "--ci-package", "voicectl==9")
    assert again.exit_code == 1 and not (outside / "gone.yml").exists()


def test_init_offers_every_template_there_is() -> None:
    from voicectl.cli.init import CI_KINDS
    from voicectl.declare.citemplates import KINDS

    assert set(CI_KINDS) == set(KINDS)
