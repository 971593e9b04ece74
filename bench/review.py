"""The review page at scale: `voicectl review` of a plan of many new voices with long takes,
against decoding the same takes with the same library (PyAV), in the same run.

    python -m bench.review                  # 200 voices, 20 s takes: bench/RESULTS-review.md
    python -m bench.review --quick          # a small N in seconds (the test suite runs it)

The takes are speech-like (phrases of a tone, with pauses), in turn wav, mp3, ogg (Opus)
and m4a (AAC), 24 kHz mono. The floor (``python -m bench.review --floor DIR``, a process
of its own, as the review is) decodes every take under DIR/audio to samples with PyAV,
one thread a core, as the review does: the least any review of them must do. Both are
run alternately; the best of each is kept. The page's size is reported too.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench import report
from bench.harness import BENCH, Bench, interleaved
from bench.procs import BenchError, run
from bench.scale import environment

FORMATS = ("wav", "mp3", "ogg", "m4a")
RATE = 24_000


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--voices", type=int, default=None, help="N (default 200; quick 8)")
    parser.add_argument("--seconds", type=float, default=None, help="per take (20; quick 4)")
    parser.add_argument("--quick", action="store_true", help="small N, one run each")
    parser.add_argument("--repeat", type=int, default=None, help="runs of each figure")
    parser.add_argument("--out", type=Path, default=BENCH / "RESULTS-review.md")
    parser.add_argument("--floor", type=Path, help=argparse.SUPPRESS)  # the floor's process
    args = parser.parse_args(argv)
    args.voices = args.voices or (8 if args.quick else 200)
    args.seconds = args.seconds or (4.0 if args.quick else 20.0)
    args.repeat = args.repeat or (1 if args.quick else 3)
    return args


def make_repo(root: Path, voices: int, seconds: float) -> None:
    """A voice repository of ``voices`` new voices, one take each, in turn of FORMATS."""
    import numpy as np

    from voicectl.sound.encode import encode

    (root / "audio").mkdir(parents=True)
    (root / "voices").mkdir()
    (root / "voicectl.yaml").write_text(
        'defaults:\n  language: en\n  space: "7350000000000000001"\n'
    )
    t = np.arange(int(RATE * seconds)) / RATE
    phrases = (np.sin(2 * np.pi * t / 2.2) > -0.8).astype(np.float32)
    lines = ["voices:"]
    for i in range(voices):
        fmt = FORMATS[i % len(FORMATS)]
        wave = 0.3 * np.sin(2 * np.pi * (200 + i) * t) * phrases
        (root / "audio" / f"v{i:04d}.{fmt}").write_bytes(
            encode(wave.astype(np.float32).reshape(1, -1), RATE, fmt)
        )
        lines += [
            f"  v{i:04d}:",
            f"    name: Benchmark voice {i}",
            f"    audio: ../audio/v{i:04d}.{fmt}",
            f"    text: The take number {i} of the review benchmark.",
        ]
    (root / "voices" / "voices.yaml").write_text("\n".join(lines) + "\n")


def floor(folder: Path) -> int:
    """Decode every take under ``folder``, one thread a core; returns the samples."""
    from voicectl.sound.decode import decode

    takes = sorted(p for p in folder.iterdir() if p.suffix[1:] in FORMATS)
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        decoded = list(pool.map(lambda p: decode(p, p.suffix[1:]), takes))
    return sum(d.samples.shape[1] for d in decoded)


def measure(b: Bench, root: Path) -> None:
    b.voicectl(root, "plan", "--no-refresh", "--out", "plan.json", codes=(0,))
    out = root / "review"

    def subject():  # type: ignore[no-untyped-def]
        return b.voicectl(root, "review", "plan.json", "-o", str(out))

    def decoding():  # type: ignore[no-untyped-def]
        return run([sys.executable, "-m", "bench.review", "--floor", str(root / "audio")], b.env)

    best_floor, best_review, _ = interleaved(b.args.repeat, decoding, subject)
    name = f"review of {b.args.voices} new voices, {b.args.seconds:g} s takes"
    b.figure(
        report.Figure(
            name,
            best_review.wall,
            best_floor.wall,
            "decoding the same takes with PyAV",
            2.0,
        )
    )
    page = (out / "index.html").stat().st_size
    folder = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    audio = sum(p.stat().st_size for p in (out / "audio").iterdir())
    b.extra["page"] = {"index_bytes": page, "folder_bytes": folder, "audio_bytes": audio}
    players = (out / "index.html").read_text().count("<audio")
    b.check("every take on the page", players == b.args.voices, f"{players} players")
    pictures = len(list((out / "images").iterdir()))
    b.check("a waveform and a spectrogram per take", pictures == 2 * b.args.voices)


def markdown(b: Bench, machine: dict[str, object], wall: float) -> str:
    sizes = b.extra.get("page", {})
    return report.page(
        "voicectl review: benchmark results",
        f"Written by `python -m bench.review` ({wall:.0f} s in all): the best of "
        f"{b.args.repeat} run(s) of each, alternated, against a floor measured in the same run.",
        machine,
        b.figures,
        b.checks,
        [
            "## The page",
            "",
            f"- index.html: {sizes.get('index_bytes', 0) / 1e3:,.0f} kB",
            "- the folder (takes, waveforms, spectrograms): "
            f"{sizes.get('folder_bytes', 0) / 1e6:,.1f} MB, of which the takes themselves: "
            f"{sizes.get('audio_bytes', 0) / 1e6:,.1f} MB",
            "",
        ],
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.floor is not None:
        print(floor(args.floor))
        return 0
    started = time.perf_counter()
    machine = report.machine()
    with tempfile.TemporaryDirectory(prefix="voicectl-reviewbench-") as tmp:
        root = Path(tmp) / "repo"
        b = Bench(args, Path(tmp), environment())
        print(f"making {args.voices} takes of {args.seconds:g} s in {root}", flush=True)
        make_repo(root, args.voices, args.seconds)
        try:
            measure(b, root)
        except BenchError as exc:
            b.check("every command ran as expected", False, str(exc).splitlines()[0])
            print(exc, file=sys.stderr)
    machine["load_after"] = report.load()
    args.out.write_text(markdown(b, machine, time.perf_counter() - started), encoding="utf-8")
    print(f"wrote {args.out}")
    return 0 if all(c.ok for c in b.checks) else 1


if __name__ == "__main__":
    sys.exit(main())
