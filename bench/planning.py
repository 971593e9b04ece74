"""The scale benchmark's figures of planning: a cold plan (nothing cached; and the
hashing alone), a warm plan with nothing changed, and a plan on a fresh git clone."""

from __future__ import annotations

import re
import shutil
import subprocess

from bench import report, synth
from bench.harness import Bench, best, interleaved
from bench.procs import Proc, clear_cache


def plan_cmd(root: str = "REPO") -> str:
    return f"python -m voicectl -C {root} plan --detailed-exitcode"


def bench_cold(b: Bench, repo: synth.Repo) -> None:
    print(f"cold plan of {repo.voices} voices (no cache, empty state)", flush=True)
    b.note(f"python bench/floors.py hash REPO   vs   rm -r .voicectl; {plan_cmd()}")
    root = repo.root

    def cold() -> Proc:
        clear_cache(root)
        return b.voicectl(root, "plan", "--detailed-exitcode", codes=(2,))

    floor, subject, runs = interleaved(b.args.repeat_cold, lambda: b.floor("hash", str(root)), cold)
    found = re.search(r"(\d+) to create", subject.out)
    creates = int(found.group(1)) if found else 0
    b.check("cold plan shows every voice as a create", creates == repo.voices, f"{creates} creates")
    b.figure(
        report.Figure(
            "cold plan (no cache): the whole command",
            subject.wall,
            floor.wall,
            f"parallel hashlib over the same {repo.audio_bytes / 1e6:.0f} MB",
            None,
            note="also parses every declaration file and plans and prints N creates; "
            "the hashing target is judged on the 'hashing only' figure below",
        )
    )
    warm_empty = best([b.voicectl(root, "plan", codes=(0,)) for _ in range(b.args.repeat)])
    hashing = subject.wall - warm_empty.wall
    b.extra["cold_plan_hashing_phase_s"] = hashing
    b.difference(
        report.Figure(
            "cold plan minus the same plan warm (hashing and parsing)",
            hashing,
            floor.wall,
            "parallel hashlib",
            None,
        )
    )
    b.extra["rss_cold_plan_mb"] = max(p.rss_mb for p in runs)
    bench_hashing(b, repo, warm_empty)


def bench_hashing(b: Bench, repo: synth.Repo, warm_empty: Proc) -> None:
    """The hashing alone: the takes' cache gone, the declarations' kept (as after a
    checkout that touched every take but no YAML), against the same plan warm."""
    root = repo.root

    def takes_cold() -> Proc:
        (root / ".voicectl" / "cache" / "takes.json").unlink(missing_ok=True)
        return b.voicectl(root, "plan", codes=(0,))

    b.voicectl(root, "plan", codes=(0,))
    floor_t, takes, _ = interleaved(
        b.args.repeat_cold, lambda: b.floor("hash", str(root)), takes_cold
    )
    hashing_only = takes.wall - warm_empty.wall
    b.extra["cold_takes_hashing_phase_s"] = hashing_only
    b.difference(
        report.Figure(
            "takes' cache removed minus the same plan warm (hashing only)",
            hashing_only,
            floor_t.wall,
            "parallel hashlib (a process of its own)",
            1.25,
            note="the issue's 'cold hashing >= 80% of the floor', as time",
        )
    )


def bench_warm(b: Bench, repo: synth.Repo) -> None:
    print(f"warm plan of {repo.voices} voices, nothing changed", flush=True)
    b.note(f"python bench/floors.py parse REPO   vs   {plan_cmd()}   (state of N voices)")
    root = repo.root
    b.voicectl(root, "plan")  # the cache is current after the apply; make sure
    floor, subject, runs = interleaved(
        b.args.repeat,
        lambda: b.floor("parse", str(root)),
        lambda: b.voicectl(root, "plan", "--detailed-exitcode", codes=(0,)),
    )
    b.check("warm plan: no changes", "No changes" in subject.out)
    b.check("parse floor saw every voice", floor.out.strip() == str(repo.voices))
    b.figure(
        report.Figure(
            "warm plan, nothing changed",
            subject.wall,
            floor.wall,
            "stat + parse of the same files (libyaml), state parsed",
            2.0,
            limit=1.0,
        )
    )
    b.extra["rss_warm_plan_mb"] = max(p.rss_mb for p in runs)
    b.extra["rss_parse_floor_mb"] = floor.rss_mb


def bench_fresh_clone(b: Bench, repo: synth.Repo) -> None:
    if shutil.which("git") is None:
        b.check("git is available for the fresh-clone figure", False, "git not found")
        return
    print(f"plan on a fresh git clone of {repo.voices} voices", flush=True)
    b.note(f"git clone REPO CLONE; {plan_cmd('CLONE')}   vs   python bench/floors.py clone CLONE")
    floors, subjects = [], []
    for attempt in range(b.args.repeat_cold):
        clone = b.work / f"clone-{attempt}"
        subprocess.run(["git", "clone", "-q", str(repo.root), str(clone)], check=True)
        subjects.append(b.voicectl(clone, "plan", "--detailed-exitcode", codes=(0,)))
        floors.append(b.floor("clone", str(clone)))
        shutil.rmtree(clone)
    floor, subject = best(floors), best(subjects)
    b.check("fresh-clone plan: no changes (the state is committed)", subject.code == 0)
    b.figure(
        report.Figure(
            "plan on a fresh git clone",
            subject.wall,
            floor.wall,
            "stat + parse + git ls-files --stage + git diff-files",
            None,
            limit=2.0,
        )
    )
    b.extra["rss_fresh_clone_plan_mb"] = max(p.rss_mb for p in subjects)
