"""Apply throughput: N uploads at latency L and parallelism P, against ceil(N/P)*L.

Runs the real CLI (`python -m voicectl apply`) as a subprocess against the emulator
served on loopback from this process, into an empty state. Prints the wall time, the
floor ceil(N/P)*L, and their ratio; also the same apply with nothing to do (the fixed
cost of starting Python, reading the repository and listing nothing), so the ratio of
the clone phase alone is visible too. Then it tells the emulator's share from
voicectl's: the same requests from a bare httpx client against the emulator
(bench/floors.py), and the same apply against bench/stub.py, whose cost per request
does not grow with the voices it holds.

    python -m bench.bench_apply                 # N=64, L=200 ms, P=8
    python -m bench.bench_apply --n 1000 --parallelism 8 --latency-ms 200
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.stub import running_stub
from voicectl.emulator.admin import Admin
from voicectl.emulator.server import running_emulator
from voicectl.emulator.tones import write_wav

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "pat_bench"


def make_repo(root: Path, n: int) -> None:
    (root / "voices").mkdir(parents=True)
    (root / "audio").mkdir()
    (root / "voicectl.yaml").write_text(
        'defaults:\n  language: en\n  space: "7350000000000000001"\n'
    )
    lines = ["voices:"]
    rate, seconds = 4000, 10.5
    for i in range(n):
        tone = 200 + i  # a distinct take per voice
        write_wav(root / "audio" / f"v{i:05d}.wav", seconds, rate, tone, amplitude=3000)
        lines += [
            f"  v{i:05d}:",
            f"    name: Voice {i}",
            f"    audio: ../audio/v{i:05d}.wav",
            f"    text: Take number {i}.",
        ]
    (root / "voices" / "voices.yaml").write_text("\n".join(lines) + "\n")


def timed_apply(root: Path, base: str, parallelism: int) -> float:
    env = {**os.environ, "COZE_API_BASE": base, "COZE_API_TOKEN": TOKEN, "CI": "1"}
    started = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "voicectl",
            "-C",
            str(root),
            "apply",
            "--auto-approve",
            "--parallelism",
            str(parallelism),
        ],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=64)
    parser.add_argument("--latency-ms", type=int, default=200)
    parser.add_argument("--parallelism", type=int, default=8)
    args = parser.parse_args()
    n, latency, p = args.n, args.latency_ms / 1000, args.parallelism
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "repo"
        make_repo(root, n)
        with running_emulator(Path(tmp) / "emulator") as base, Admin(base, TOKEN) as admin:
            admin.faults(latency_ms=args.latency_ms)
            wall = timed_apply(root, base, p)
            clones = len(admin.ledger())
            fixed = timed_apply(root, base, p)  # nothing left to do: the fixed cost
        with running_emulator(Path(tmp) / "emulator-bare") as base, Admin(base, TOKEN) as admin:
            admin.faults(latency_ms=args.latency_ms)
            bare = timed_floor(root, base, p)
        (root / "state" / "voicectl.state.json").unlink()
        with running_stub(latency) as (base, ledger):
            stub = timed_apply(root, base, p)
            stub_clones = len(ledger.names)
    floor = math.ceil(n / p) * latency
    print(f"apply N={n} L={latency * 1000:.0f}ms P={p}: {clones} clones")
    print(f"  wall time              {wall:8.3f} s")
    print(f"  floor ceil(N/P)*L      {floor:8.3f} s")
    print(f"  ratio wall/floor       {wall / floor:8.3f}")
    print(f"  no-op apply (fixed)    {fixed:8.3f} s")
    print(f"  ratio (wall-fixed)/floor {(wall - fixed) / floor:6.3f}")
    print(
        f"  bare client, emulator  {bare:8.3f} s   ratio {bare / floor:6.3f} (the emulator's share)"
    )
    print(f"  apply, bench/stub.py   {stub:8.3f} s   ratio {stub / floor:6.3f} (voicectl's share)")
    if clones != n or stub_clones != n:
        raise SystemExit(f"expected {n} clones, got {clones} (emulator), {stub_clones} (stub)")


def timed_floor(root: Path, base: str, parallelism: int) -> float:
    started = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "floors.py"),
            "clones",
            str(root),
            base,
            str(parallelism),
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - started


if __name__ == "__main__":
    main()
