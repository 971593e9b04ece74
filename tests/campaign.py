"""Fault campaign: randomized applies against the Coze emulator, faults and kill -9 included.

Each run mutates a real voice repository (new voices, retrains, renames, moved files,
removals, re-added orphans, a space change now and then), arms random faults on the
emulator (latency, 5xx, 429 storms, a gateway's page before any commit, a token-bucket
rate limit, replies lost after the clone was committed, clones committed and then
answered with 4013, an undocumented code, a body that is not Coze's envelope or a success
whose voice id is not one, short list pages that say ``has_more``, a list page that
repeats, a Coze clock that disagrees with this machine's, and a journal whose last line a
kill tore) and runs
``python -m voicectl apply --auto-approve`` as a subprocess, sometimes SIGKILLed at a
random moment, sometimes on a full disk (a file size limit, RLIMIT_FSIZE, that stops its
writes at a random size with EFBIG), sometimes with a rival apply started at the same
moment (and, after a kill, two rivals racing for the dead holder's lock). After a kill
that leaves a journal, a newer state (as from a ``git pull``) is sometimes put over it:
voicectl must refuse it without a clone until the state the journal began from is back.
Then, faults cleared, apply runs again until the plan is empty, and the invariants are
checked against the emulator's ledger (the clones Coze really made) and its list endpoint:

- every needed clone happened exactly once: per take, the ledger holds as many clones as
  the campaign's own model of the repository asked for (no double clone);
- no voice id is lost: every voice id in the ledger is in the state (voice or orphan);
- the state's voices and orphans are exactly the emulator's voices, with the same name,
  language and clone budget; a voice keeps its id across renames, moves and retrains;
- no journal or lock is left, the state file validates against state.schema.json and
  planning it again finds nothing to do;
- no apply's output holds a traceback.

    python -m tests.campaign --runs 300 --seed 7    # the full run, from the project root

The core (:func:`campaign`) is importable: ``tests/test_campaign.py`` runs a small one.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import resource
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator

from voicectl.emulator.admin import Admin
from voicectl.emulator.server import running_emulator
from voicectl.emulator.tones import write_wav
from voicectl.plan import planner, repository

ROOT = Path(__file__).resolve().parent.parent

TOKEN = "pat_campaign_token_K7x2"
SPACES = ("7350000000000000001", "7350000000000000002")
CLONE_LIMIT = 10
UNANSWERED_WAIT = 1.5
STATE = Path("state") / "voicectl.state.json"
STATE_SCHEMA = Draft202012Validator(json.loads((ROOT / "schemas/state.schema.json").read_text()))
ADOPT_HINT = re.compile(r"--adopt ([a-z0-9][a-z0-9_.-]*)=VOICE_ID")
LANGUAGES = ("en", "zh", "ja", "es")


@dataclass(frozen=True)
class Profile:
    """How hard the faults hit: ``ci`` keeps a few dozen runs within a minute."""

    max_latency_ms: int
    max_fail_count: int
    max_storm_count: int
    rate_limit_p: float
    max_new: int
    runs_per_world: int


PROFILES = {
    "ci": Profile(60, 2, 2, 0.08, 2, 6),
    "full": Profile(250, 3, 4, 0.15, 3, 8),
}


@dataclass
class Counts:
    """What a campaign did and found; ``violations`` says what broke, run by run."""

    runs: int = 0
    worlds: int = 0
    applies: int = 0
    clones: int = 0
    kills: int = 0
    kills_missed: int = 0  # the apply had already finished when the signal was due
    double_clones: int = 0
    lost_ids: int = 0
    adoption_runs: int = 0
    unproven: int = 0  # voices recorded as found after a lost reply, not proven own
    refused_newer_state: int = 0  # applies that refused a journal under a newer state
    lost_lock_races: int = 0  # applies refused because a rival held the lock
    unanswered_waits: int = 0  # applies stopped, nothing resent, for an unanswered clone
    recovery_applies: int = 0  # applies after the faulty one, until the plan was empty
    faults: Counter[str] = field(default_factory=Counter)
    ops: Counter[str] = field(default_factory=Counter)
    violations: list[str] = field(default_factory=list)
    wall: float = 0.0

    def report(self) -> str:
        faults = ", ".join(f"{k} {v}" for k, v in sorted(self.faults.items())) or "none"
        ops = ", ".join(f"{k} {v}" for k, v in sorted(self.ops.items()))
        return "\n".join(
            [
                f"runs: {self.runs} (in {self.worlds} repositories), applies: {self.applies} "
                f"({self.recovery_applies} after a faulty one), clones: {self.clones}",
                f"changes made: {ops}",
                f"faults injected: {faults}",
                f"kills: {self.kills} landed, {self.kills_missed} after the apply had ended",
                f"double clones: {self.double_clones}",
                f"lost voice ids: {self.lost_ids}",
                f"runs needing --adopt: {self.adoption_runs}",
                f"voices recorded unproven: {self.unproven}",
                f"applies refused for a newer state over a journal: {self.refused_newer_state}",
                f"applies refused for a rival's lock: {self.lost_lock_races}",
                f"applies stopped, nothing resent, for a clone maybe in Coze's hands: "
                f"{self.unanswered_waits}",
                f"invariant violations: {len(self.violations)}",
                f"wall time: {self.wall:.1f} s",
            ]
        )


@dataclass(frozen=True)
class Voice:
    """The campaign's own model of one declared voice: the oracle for the checks."""

    address: str
    name: str
    audio: str  # file name under audio/
    text: str
    language: str
    space: str
    sha: str
    voice_id: str | None = None  # learnt from the state once its clone has converged


def write_take(path: Path, tone: float, seconds: float = 10.5, rate: int = 4000) -> str:
    """A real mono 16-bit WAV (a tone, distinct per ``tone``); returns its SHA-256."""
    write_wav(path, seconds, rate, tone, amplitude=6000)
    return hashlib.sha256(path.read_bytes()).hexdigest()


class Emulator(Admin):
    """The emulator seen from the campaign: its admin endpoints and its list."""

    def __init__(self, base: str) -> None:
        super().__init__(base, TOKEN)

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            **super().env(),
            "CI": "1",
            "VOICECTL_RECONCILE_SETTLE": "0.2,0.5",  # shorter than 2,5 s: many runs
            # The emulator ends a request with its connection (a kill), or within its
            # latency: 1.5 s in its hands, not 1200, and the campaign waits them out.
            "VOICECTL_UNANSWERED_WAIT": str(UNANSWERED_WAIT),
        }


class World:
    """One voice repository and its model; the emulator is reset when a world begins."""

    def __init__(self, root: Path, rng: random.Random) -> None:
        self.root, self.rng = root, rng
        self.voices: dict[str, Voice] = {}
        self.removed: list[Voice] = []  # orphaned by a removed declaration: may come back
        self.retired: set[str] = set()  # voice ids left behind by a replace
        self.expected: Counter[str] = Counter()  # take sha -> clones it should have had
        self.clones_used: Counter[str] = Counter()  # voice id -> clones, from the model
        self.serial = 0
        root.mkdir(parents=True)
        config = {"defaults": {"language": "en", "space": SPACES[0]}}
        (root / "voicectl.yaml").write_text(yaml.safe_dump(config))

    def fresh(self, prefix: str) -> str:
        self.serial += 1
        return f"{prefix}{self.serial:03d}"

    def take(self, audio: str) -> str:
        return write_take(self.root / "audio" / audio, tone=150 + 7.3 * self.serial)

    def declare(self) -> None:
        body = {}
        for v in self.voices.values():
            item = {"name": v.name, "audio": f"../audio/{v.audio}", "text": v.text}
            if v.language != "en":
                item["language"] = v.language
            if v.space != SPACES[0]:
                item["space"] = v.space
            body[v.address] = item
        path = self.root / "voices" / "voices.yaml"
        path.parent.mkdir(exist_ok=True)
        path.write_text(yaml.safe_dump({"voices": body}, allow_unicode=True, sort_keys=False))

    # -- mutations: each returns the takes it should cost a clone -------------------------

    def add(self) -> list[str]:
        address = self.fresh("v")
        names = [v.name for v in self.voices.values()]
        shared = names and self.rng.random() < 0.25  # names are not unique on Coze
        name = self.rng.choice(names) if shared else f"Voice {address}"
        language = self.rng.choice(LANGUAGES) if self.rng.random() < 0.3 else "en"
        audio = f"{self.fresh('t')}.wav"
        voice = Voice(address, name, audio, f"Take {audio}.", language, SPACES[0], self.take(audio))
        self.voices[address] = voice
        return [voice.sha]

    def retrain(self, v: Voice) -> list[str]:
        how = self.rng.choice(("audio", "audio", "audio", "text", "language"))
        if how == "audio":
            self.fresh("")
            new = replace(v, sha=self.take(v.audio))
        elif how == "text":
            new = replace(v, text=f"{v.text} Again {self.fresh('')}.")
        else:
            new = replace(v, language=self.rng.choice([x for x in LANGUAGES if x != v.language]))
        self.voices[v.address] = new
        return [new.sha]

    def rename(self, v: Voice) -> list[str]:
        del self.voices[v.address]
        new = replace(v, address=self.fresh("r"))
        self.voices[new.address] = new
        return []

    def move_file(self, v: Voice) -> list[str]:
        audio = f"{self.fresh('m')}.wav"
        (self.root / "audio" / v.audio).rename(self.root / "audio" / audio)
        self.voices[v.address] = replace(v, audio=audio)
        return []

    def remove(self, v: Voice) -> list[str]:
        del self.voices[v.address]
        self.removed.append(v)
        return []

    def readd(self, v: Voice) -> list[str]:
        self.removed.remove(v)
        address = v.address if v.address not in self.voices else self.fresh("b")
        self.voices[address] = replace(v, address=address)
        return []

    def respace(self, v: Voice) -> list[str]:
        assert v.voice_id is not None
        self.retired.add(v.voice_id)
        space = SPACES[1] if v.space == SPACES[0] else SPACES[0]
        self.voices[v.address] = replace(v, space=space, voice_id=None)
        return [v.sha]

    def rename_voice(self, v: Voice) -> list[str]:
        self.voices[v.address] = replace(v, name=f"{v.name} {self.fresh('n')}")
        return []  # a name alone waits for the next retrain

    def mutate(self, profile: Profile, ops: Counter[str]) -> Counter[str]:
        """Change the repository at random; returns the takes that should be cloned."""
        wanted: Counter[str] = Counter()
        if not self.voices:
            for _ in range(self.rng.randint(2, 4)):
                wanted.update(self.add())
                ops["create"] += 1
            self.declare()
            return wanted
        weights = {
            "create": 3,
            "retrain": 3,
            "rename": 2,
            "move_file": 2,
            "remove": 1 if len(self.voices) > 2 else 0,
            "readd": 1 if self.removed else 0,
            "respace": 0.4,
            "rename_voice": 0.6,
        }
        touched: set[str] = set()
        new = 0
        for _ in range(self.rng.randint(1, 3)):
            op = self.rng.choices(list(weights), list(weights.values()))[0]
            before = set(self.voices)
            if op == "create":
                if new >= profile.max_new:
                    continue
                new += 1
                wanted.update(self.add())
            elif op == "readd":
                if not self.removed:  # an earlier readd of this round took the last one
                    continue
                v = self.rng.choice(self.removed)
                if v.address in touched:
                    continue
                self.readd(v)
            else:
                free = [v for v in self.voices.values() if v.address not in touched]
                if op in ("retrain", "respace"):
                    free = [v for v in free if v.voice_id is not None]
                if op == "retrain":
                    free = [v for v in free if self.clones_used[v.voice_id or ""] < CLONE_LIMIT - 1]
                if not free:
                    continue
                v = self.rng.choice(free)
                touched.add(v.address)
                wanted.update(getattr(self, op)(v))
            touched |= before ^ set(self.voices)
            ops[op] += 1
        self.declare()
        return wanted


def choose_faults(rng: random.Random, profile: Profile) -> tuple[dict[str, Any], list[str]]:
    settings: dict[str, Any] = {}
    kinds = []
    if rng.random() < 0.5:
        settings["latency_ms"] = rng.randint(5, profile.max_latency_ms)
        kinds.append("latency")
    roll = rng.random()
    if roll < 0.3:
        settings["fail"] = {
            "code": 5000,
            "http_status": rng.choice((500, 502, 503, 504)),
            "count": rng.randint(1, profile.max_fail_count),
            "endpoint": rng.choice(("clone", "clone", "list", None)),
        }
        kinds.append("5xx")
    elif roll < 0.45:
        settings["fail"] = {
            "code": rng.choice((4009, 4020)),
            "http_status": rng.choice((429, 200)),
            "count": rng.randint(1, profile.max_storm_count),
            "endpoint": rng.choice(("clone", None)),
        }
        kinds.append("429_storm")
    elif roll < 0.55:  # an unknown outcome that was not committed: found absent, resent
        settings["fail"] = {
            "code": rng.choice((4013, 4999, 5000)),
            "http_status": rng.choice((200, 502)),
            "count": rng.randint(1, profile.max_fail_count),
            "endpoint": "clone",
        }
        kinds.append("unknown_not_committed")
    elif roll < 0.62:  # a gateway's page, Coze never answering: resent only after a wait
        settings["fail"] = {
            "http_status": rng.choice((502, 504)),
            "body": "<html><body>504 Gateway Time-out</body></html>",
            "count": rng.randint(1, profile.max_fail_count),
            "endpoint": "clone",
        }
        kinds.append("gateway_page_not_committed")
    # Coze committed the clone, then answered with something that proves nothing.
    roll = rng.random()
    if roll < 0.12:
        settings["fail_after_commit"] = {
            "code": 4013,
            "http_status": 200,
            "count": rng.randint(1, 2),
        }
        kinds.append("commit_then_4013")
    elif roll < 0.24:
        settings["fail_after_commit"] = {
            "code": rng.choice((4999, 7001, 5000, 4200)),
            "http_status": rng.choice((200, 400, 500, 502, 503)),
            "count": rng.randint(1, 2),
        }
        kinds.append("commit_then_unknown_code")
    elif roll < 0.30:
        settings["fail_after_commit"] = {
            "http_status": rng.choice((200, 502)),
            "body": rng.choice(("", "<html><body>502 Bad Gateway</body></html>")),
            "count": 1,
        }
        kinds.append("commit_then_not_an_envelope")
    elif roll < 0.36:  # committed, then a success envelope whose voice id is not one
        bogus = rng.choice(("abc", "../../etc/passwd", "7" * 5000, "74\x1b[2J1", ""))
        settings["fail_after_commit"] = {
            "http_status": 200,
            "body": json.dumps({"code": 0, "msg": "", "data": {"voice_id": bogus}}),
            "content_type": "application/json",
            "count": 1,
        }
        kinds.append("commit_then_bogus_id")
    if rng.random() < 0.25:  # Coze's clock disagrees with this machine's
        settings["clock_skew_s"] = rng.choice((-3600, -8, -3, 8, 3600))
        kinds.append("clock_skew")
    roll = rng.random()
    if roll < 0.2:
        settings["list_page_cap"] = rng.randint(1, 3)
        kinds.append("short_pages")
    elif roll < 0.3:  # a list that does not show the newest voices for a few reads
        settings["list_lag"] = rng.randint(1, 2)
        kinds.append("lagging_list")
    elif roll < 0.35:  # reconcile must not conclude from it: the apply stops, and recovers
        settings["list_page_cap"] = 1
        settings["list_repeat_from"] = 2
        kinds.append("repeated_page")
    if rng.random() < profile.rate_limit_p:
        settings["rate_limit_qps"] = rng.choice((3, 5, 8))
        kinds.append("rate_limit")
    if rng.random() < 0.4:
        settings["drop_after_commit"] = rng.randint(1, 3)
        kinds.append("lost_reply")
    return settings, kinds


def apply_command(root: Path, parallelism: int, adopt: Sequence[str] = ()) -> list[str]:
    command = [sys.executable, "-m", "voicectl", "-C", str(root), "apply", "--auto-approve"]
    command += ["--parallelism", str(parallelism)]
    for item in adopt:
        command += ["--adopt", item]
    return command


@contextmanager
def _output() -> Iterator[Any]:
    with tempfile.TemporaryFile("w+") as handle:
        yield handle


def run_apply(
    coze: Emulator,
    root: Path,
    rng: random.Random,
    parallelism: int,
    kill: str | None = None,
    expected: int = 0,
    adopt: Sequence[str] = (),
    fsize: int | None = None,
    rival: bool = False,
) -> tuple[int | None, str, bool]:
    """One apply as a subprocess; ``kill`` ("time" or "ledger") SIGKILLs it mid-way;
    ``fsize`` limits the size of every file it writes (a full disk: EFBIG past it);
    ``rival`` starts a second apply at the same moment, which waits for the lock or is
    refused. Returns the first's exit status (None when killed), the output of both, and
    whether a kill landed.
    """
    before = len(coze.ledger())

    def limit() -> None:
        if fsize is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))

    with _output() as out, _output() as other:
        process = subprocess.Popen(
            apply_command(root, parallelism, adopt),
            env=coze.env(),
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            preexec_fn=limit if fsize is not None else None,
        )
        second = (
            subprocess.Popen(
                apply_command(root, rng.randint(1, 4), adopt),
                env=coze.env(),
                stdout=other,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
            )
            if rival
            else None
        )
        landed = False
        if kill is not None:
            if kill == "time":
                time.sleep(rng.uniform(0.0, 0.35 + 0.05 * expected))
            else:  # after a random number of clones reached Coze
                target = before + rng.randint(0, max(0, expected - 1))
                while process.poll() is None and len(coze.ledger()) < target:
                    time.sleep(0.005)
                time.sleep(rng.uniform(0.0, 0.03))
            landed = process.poll() is None
            if landed:
                process.send_signal(signal.SIGKILL)
        status = _wait(process)
        if second is not None:
            _wait(second)
            other.seek(0)
        out.seek(0)
        text = out.read() + (f"\n[rival apply]\n{other.read()}" if second is not None else "")
    return (None if landed else status), text, landed


def _wait(process: subprocess.Popen[bytes]) -> int:
    try:
        return process.wait(timeout=300)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        return -1


def newer_state_over(root: Path, coze: Emulator, rng: random.Random) -> tuple[bool, str]:
    """A newer state put over a killed apply's journal, as a ``git pull`` of another
    clone's state would: the apply must clone nothing, and either show the state holds
    every outcome of the journal or refuse. Then the state the journal began from is put
    back (the documented way out). Returns whether it refused, and its output."""
    path = root / STATE
    original = path.read_bytes() if path.exists() else None
    if original is None:
        return False, ""
    newer = json.loads(original)
    newer["serial"] += rng.randint(1, 3)
    path.write_text(json.dumps(newer, indent=2))
    before = len(coze.ledger())
    with _output() as out:
        status = _wait(
            subprocess.Popen(
                apply_command(root, 1), env=coze.env(), stdout=out, stderr=subprocess.STDOUT
            )
        )
        out.seek(0)
        text = out.read()
    if len(coze.ledger()) != before:
        text += "\nVIOLATION: an apply under a newer state than its journal cloned"
    journal = path.with_name(path.name + ".journal")
    refused = status != 0 and "lies under a state written since" in text
    if journal.exists():
        path.write_bytes(original)  # `git checkout` the state the journal began from
    return refused, text


def state_of(root: Path) -> dict[str, Any] | None:
    path = root / STATE
    data: dict[str, Any] | None = json.loads(path.read_text()) if path.exists() else None
    return data


def pending_plan(root: Path) -> list[str]:
    """What voicectl would still do (anything but noop), read as plan does."""
    cfg = repository.open_config(root)
    current, _ = repository.effective_state(cfg)
    snapshot = repository.read_valid(cfg)
    result = planner.plan(snapshot.desired, current)
    return [f"{c.action} {c.address}" for c in result.changes if c.action != "noop"]


def adoption(output: str, world: World, coze: Emulator) -> list[str]:
    """--adopt arguments for an ambiguous lost clone, chosen by the ledger's take hashes."""
    state = state_of(world.root) or {"voices": {}, "orphans": []}
    known = {r["voice_id"] for r in [*state["voices"].values(), *state["orphans"]]}
    picks = []
    for address in ADOPT_HINT.findall(output):
        voice = world.voices.get(address)
        if voice is None:
            continue
        ids = [
            e["voice_id"]
            for e in coze.ledger()
            if e["kind"] == "create" and e["audio_sha256"] == voice.sha
        ]
        fresh = [i for i in ids if i not in known]
        if fresh:
            picks.append(f"{address}={fresh[-1]}")
    return picks


def check(world: World, coze: Emulator, counts: Counts, tag: str) -> None:
    """The campaign's invariants, after a run converged; violations go to ``counts``."""
    problems: list[str] = []
    state = state_of(world.root)
    if state is None:
        counts.violations.append(f"{tag}: no state file")
        return
    problems += [f"state schema: {e.message}" for e in STATE_SCHEMA.iter_errors(state)]
    for leftover in ("voicectl.state.json.journal", "voicectl.state.json.lock"):
        if (world.root / "state" / leftover).exists():
            problems.append(f"{leftover} left behind")
    records = {**{r["voice_id"]: r for r in state["orphans"]}}
    records.update({r["voice_id"]: r for r in state["voices"].values()})
    ledger = coze.ledger()
    lost = {e["voice_id"] for e in ledger} - set(records)
    counts.lost_ids += len(lost)
    problems += [f"voice {i} is on Coze's ledger but not in the state" for i in sorted(lost)]
    cloned = Counter(e["audio_sha256"] for e in ledger)
    for sha in sorted(set(cloned) | set(world.expected)):
        extra = cloned[sha] - world.expected[sha]
        if extra > 0:
            counts.double_clones += extra
            problems.append(f"take {sha[:12]} cloned {cloned[sha]}x, wanted {world.expected[sha]}")
        elif extra < 0:
            problems.append(f"take {sha[:12]} cloned {cloned[sha]}x, wanted {world.expected[sha]}")
    indexed = Counter(
        (e["voice_id"], sha) for sha, entries in state["takes"].items() for e in entries
    )
    if indexed != Counter((e["voice_id"], e["audio_sha256"]) for e in ledger):
        problems.append("the state's take index does not match Coze's ledger")
    remote = coze.voices()
    if set(remote) != set(records):
        problems.append(f"state ids {sorted(records)} != Coze's {sorted(remote)}")
    for voice_id, record in records.items():
        found = remote.get(voice_id)
        if found is None:
            continue
        facts = (found["name"], found["language_code"], found["available_training_times"])
        if facts != (record["name"], record["language"], CLONE_LIMIT - record["clones_used"]):
            problems.append(f"voice {voice_id}: Coze has {facts}, the state {record['name']!r}")
    for gone in world.retired:
        if gone not in {r["voice_id"] for r in state["orphans"]}:
            problems.append(f"replaced voice {gone} is not kept as an orphan")
    if set(state["voices"]) != set(world.voices):
        problems.append(f"addresses {sorted(state['voices'])} != declared {sorted(world.voices)}")
    for address, voice in list(world.voices.items()):
        record = state["voices"].get(address)
        if record is None:
            continue
        if record["audio"]["sha256"] != voice.sha:
            problems.append(f"{address}: the state's take is not the declared one")
        if voice.voice_id not in (None, record["voice_id"]):
            problems.append(f"{address}: voice {voice.voice_id} became {record['voice_id']}")
        world.voices[address] = replace(voice, voice_id=record["voice_id"])
        world.clones_used[record["voice_id"]] = record["clones_used"]
    for removed in world.removed:
        if removed.voice_id and removed.voice_id not in records:
            problems.append(f"removed voice {removed.voice_id} was forgotten")
    problems += [f"still planned: {item}" for item in pending_plan(world.root)]
    counts.unproven += sum(1 for r in state["voices"].values() if "unproven" in r)
    counts.violations += [f"{tag}: {p}" for p in problems]


def one_run(
    world: World,
    coze: Emulator,
    profile: Profile,
    counts: Counts,
    tag: str,
    log: Callable[[str], None],
) -> None:
    rng = world.rng
    ledger_before = len(coze.ledger())
    wanted = world.mutate(profile, counts.ops)
    world.expected.update(wanted)
    settings, kinds = choose_faults(rng, profile)
    kill = rng.choice(("time", "ledger")) if rng.random() < 0.4 else None
    # Draws whose number depends on timing come from their own generator, so that a
    # seed always makes the same repositories and faults.
    timing = random.Random(rng.random())
    counts.faults.update(kinds + (["kill"] if kill else []))
    if settings:
        coze.faults(**settings)
    parallelism = rng.randint(1, 4)
    fsize = None
    if rng.random() < 0.12:  # the disk fills up at a random point of the apply
        size = (world.root / STATE).stat().st_size if (world.root / STATE).exists() else 0
        fsize = rng.randint(256, size + 16_384)
        counts.faults["disk_full"] += 1
    rival = rng.random() < 0.12
    counts.faults.update(["rival_apply"] if rival else [])
    status, output, landed = run_apply(
        coze, world.root, timing, parallelism, kill, sum(wanted.values()), fsize=fsize, rival=rival
    )
    outputs = [output]
    counts.applies += 1 + rival
    counts.kills += landed
    counts.kills_missed += bool(kill) and not landed
    coze.clear_faults()
    coze.settle()
    journal = world.root / STATE.with_name(STATE.name + ".journal")
    if landed and journal.exists() and timing.random() < 0.5:
        # The kill (or a full disk) tore the journal's last line: half a record, no newline.
        with open(journal, "ab") as handle:
            handle.write(b'{"type": "done", "seq": 99999, "voice_id": "74')
        counts.faults["torn_journal_tail"] += 1
    if landed and journal.exists() and timing.random() < 0.5:
        refused, text = newer_state_over(world.root, coze, timing)
        outputs.append(text)
        counts.faults["newer_state_over_journal"] += 1
        counts.refused_newer_state += refused
        counts.applies += 1
    race = landed and timing.random() < 0.3  # two applies race for the dead holder's lock
    counts.faults.update(["lock_race_after_kill"] if race else [])
    log(
        f"{tag}: {sum(wanted.values())} clone(s), faults {kinds}, kill {kill}: "
        f"{'killed' if landed else f'exit {status}'}"
    )
    if status not in (0, None):
        log(output)
    adopted = False
    for _ in range(4):
        if status == 0 and not pending_plan(world.root):
            break
        if "no reply proved what became of the clone" in output:  # stopped: wait it out
            counts.unanswered_waits += 1
            time.sleep(UNANSWERED_WAIT)
        adopt = adoption(output, world, coze)
        adopted = adopted or bool(adopt)
        status, output, _ = run_apply(
            coze, world.root, timing, timing.randint(1, 4), adopt=adopt, rival=race
        )
        outputs.append(output)
        counts.applies += 1 + race
        counts.recovery_applies += 1 + race
        race = False
        log(f"{tag}: again{' --adopt ' + ' '.join(adopt) if adopt else ''}: exit {status}")
        if status != 0:
            log(output)
    else:
        counts.violations.append(f"{tag}: did not converge; last output:\n{output[-1500:]}")
    counts.adoption_runs += adopted
    counts.lost_lock_races += sum(text.count("is locked") for text in outputs)
    for text in outputs:
        if "VIOLATION:" in text:
            counts.violations.append(f"{tag}: {text[text.index('VIOLATION:') :][:300]}")
        if "Traceback" in text:
            counts.violations.append(f"{tag}: an apply printed a traceback:\n{text[-1500:]}")
    delta = coze.ledger()[ledger_before:]
    counts.clones += len(delta)
    if Counter(e["audio_sha256"] for e in delta) != wanted:
        counts.violations.append(
            f"{tag}: this run cloned {len(delta)} take(s), wanted {sum(wanted.values())}"
        )
    check(world, coze, counts, tag)


def campaign(
    runs: int,
    seed: int,
    workdir: Path,
    profile: Profile = PROFILES["full"],
    log: Callable[[str], None] = lambda line: None,
) -> Counts:
    """``runs`` randomized runs from ``seed``; a new repository every few runs."""
    rng = random.Random(seed)
    counts = Counts()
    started = time.monotonic()
    with running_emulator(workdir / "emulator") as base, Emulator(base) as coze:
        world: World | None = None
        for number in range(runs):
            if world is None or number % profile.runs_per_world == 0:
                coze.reset()
                counts.worlds += 1
                world = World(workdir / f"repo{counts.worlds:03d}", random.Random(rng.random()))
            began = time.monotonic()
            one_run(world, coze, profile, counts, f"run {number}", log)
            log(f"run {number}: {time.monotonic() - began:.1f} s")
            counts.runs += 1
    counts.wall = time.monotonic() - started
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--profile", choices=sorted(PROFILES), default="full")
    parser.add_argument("--keep", type=Path, help="Work in this directory and keep it.")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    log = (lambda line: print(line, file=sys.stderr, flush=True)) if args.verbose else None
    with tempfile.TemporaryDirectory(prefix="voicectl-campaign-") as tmp:
        workdir = args.keep or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        counts = campaign(
            args.runs, args.seed, workdir, PROFILES[args.profile], log or (lambda line: None)
        )
    print(counts.report())
    for violation in counts.violations:
        print(f"VIOLATION {violation}")
    return 1 if counts.violations else 0


if __name__ == "__main__":
    sys.exit(main())
