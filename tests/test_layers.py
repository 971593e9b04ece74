"""The layering contracts (pyproject's tool.importlinter) hold, and they would catch a
forbidden import: a copy of the package with one added is refused."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import VoiceRepo

PROJECT = Path(__file__).resolve().parent.parent
LINT = Path(sys.executable).with_name("lint-imports")


def _lint(package_parent: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(package_parent)}
    return subprocess.run(
        [str(LINT), "--config", str(PROJECT / "pyproject.toml"), "--no-cache"],
        cwd=package_parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_every_layering_contract_is_kept() -> None:
    done = _lint(PROJECT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "6 kept, 0 broken" in done.stdout


def test_a_forbidden_import_breaks_its_contract(tmp_path: Path) -> None:
    shutil.copytree(PROJECT / "voicectl", tmp_path / "voicectl")
    planner = tmp_path / "voicectl" / "plan" / "planner.py"
    planner.write_text(planner.read_text() + "\nimport httpx  # noqa: E402, F401\n")
    done = _lint(tmp_path)
    assert done.returncode == 1
    assert "Planning is pure: no I/O, no network, no command line BROKEN" in done.stdout
    assert "voicectl.plan.planner -> httpx" in done.stdout


def test_every_error_a_user_can_cause_is_in_the_one_tree() -> None:
    """Each error class voicectl raises on purpose is defined in voicectl.errors, with its
    exit status (the emulator, standing apart, has its own)."""
    import importlib
    import inspect
    import pkgutil

    import voicectl
    from voicectl.errors import VoicectlError

    elsewhere = []
    for info in pkgutil.walk_packages(voicectl.__path__, "voicectl."):
        if info.name.startswith("voicectl.emulator") or info.name == "voicectl.__main__":
            continue
        module = importlib.import_module(info.name)
        for name, value in vars(module).items():
            if (
                inspect.isclass(value)
                and issubclass(value, VoicectlError)
                and value.__module__ != "voicectl.errors"
            ):
                elsewhere.append(f"{value.__module__}.{name}")
    assert elsewhere == []
    import voicectl.errors as errors

    tree = [v for v in vars(errors).values() if inspect.isclass(v) and issubclass(v, Exception)]
    assert len(tree) >= 15 and all(isinstance(c.exit_code, int) for c in tree if c is not Exception)


def test_no_module_is_over_400_lines_and_no_function_over_60() -> None:
    """The sizes a maintainer can hold in mind, in the package and the benchmarks."""
    too_long = []
    for path in sorted([*(PROJECT / "voicectl").rglob("*.py"), *(PROJECT / "bench").rglob("*.py")]):
        source = path.read_text(encoding="utf-8")
        where = path.relative_to(PROJECT)
        if source.count("\n") > 400:
            too_long.append(f"{where}: {source.count(chr(10))} lines")
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > 60:
                    too_long.append(f"{where}:{node.lineno}: {node.name}, {length} lines")
    assert too_long == []


def test_a_plan_without_a_token_loads_no_http_client(repo: VoiceRepo) -> None:
    """httpx is loaded by the commands that talk to Coze, when they do: a plan with no
    token (the common CI check of a pull request) does not pay for it."""
    repo.declare({"a": repo.voice("a")})
    env = {k: v for k, v in os.environ.items() if k != "COZE_API_TOKEN"}
    code = (
        "import sys; from voicectl.cli import main\n"
        "try:\n    main(['-C', sys.argv[1], 'plan'])\n"
        "finally:\n    print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('httpx', 'httpcore')), file=sys.stderr)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(repo.root)],
        cwd=PROJECT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "1 to create" in done.stdout
    assert done.stderr.rstrip().endswith("[]"), done.stderr
