"""The bad-input catalogue: one test per input a user (or a pull request) can get wrong.

Every case runs the real CLI and ends the same way: one finding naming the file, line,
column and field; exit 1 for errors and 0 for warnings; no traceback; and every file
under the test's directory (the repository, the state, and whatever lies outside the
repository) exactly as it was. Declarations, audio and config are checked through both
`validate` and `plan`; the state through `plan` and `apply`.
"""

from __future__ import annotations

import json
import os
import random
import wave
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.badinput import Audit, Expect, assert_one_error, assert_reported, audited, tree
from tests.conftest import VoiceRepo, write_wav
from voicectl.emulator.tones import tone_wav
from voicectl.state import statefile as state_io

V = "voices/voices.yaml"
C = "voicectl.yaml"
S = "state/voicectl.state.json"
AUDIO = "voices.a.audio"
MB = 1024 * 1024
Setup = Callable[[VoiceRepo], object]
OFFLINE = {"COZE_API_TOKEN": "", "COZE_API_BASE": ""}  # plan refreshes given a token


def voice(
    *extra: str,
    name: str = "Annabelle",
    audio: str = "../audio/a.wav",
    text: str = "The take of a.",
) -> str:
    """voices/voices.yaml declaring ``a``: name at 3:11, audio at 4:12, text at 5:11."""
    lines = ["voices:", "  a:", f"    name: {name}", f"    audio: {audio}", f"    text: {text}"]
    return "\n".join([*lines, *extra]) + "\n"


def bomb(levels: int = 6, fan: int = 100) -> str:
    """Billion laughs: level k expands to fan**k values (10**12 at the top)."""
    lines = [f"l1: &l1 [{', '.join(['lol'] * fan)}]"]
    for k in range(2, levels + 1):
        lines.append(f"l{k}: &l{k} [{', '.join([f'*l{k - 1}'] * fan)}]")
    return "\n".join(lines) + "\n"


def merge_bomb(levels: int = 9) -> str:
    """The same through merge keys: each level merges the previous one nine times."""
    lines = ["m1: &m1 {a: 1, b: 2, c: 3, d: 4, e: 5, f: 6, g: 7, h: 8, i: 9}"]
    for k in range(2, levels + 1):
        lines.append(f"m{k}: &m{k} {{<<: [{', '.join([f'*m{k - 1}'] * 9)}]}}")
    return "\n".join(lines) + "\n"


@pytest.fixture
def bad(repo: VoiceRepo) -> VoiceRepo:
    """A repository whose one voice ``a`` has a good 12 s take at audio/a.wav."""
    repo.audio("a.wav")
    repo.write(V, voice())
    return repo


def check(bad: VoiceRepo, run, expected: Expect, commands: tuple[str, ...]) -> Audit:
    """Run ``commands``, expect the one finding from each; returns what they opened."""
    everything = bad.root.parent  # the repository and what lies outside it
    before = tree(everything)
    with audited() as audit:
        results = [run(bad.root, command, env=OFFLINE) for command in commands]
    for result in results:
        assert_reported(result, expected)
    assert tree(everything) == before
    return audit


# -- declarations -------------------------------------------------------------------

DECLARATIONS = [
    pytest.param(
        voice(name="5"),
        Expect(V, 3, 11, "voices.a.name", "must be a string, not the number 5"),
        id="wrong-type-number-for-string",
    ),
    pytest.param(
        voice(name="~"),
        Expect(V, 3, 11, "voices.a.name", "must be a string, not empty (null)"),
        id="wrong-type-null",
    ),
    pytest.param(
        voice('    protect: "yes"'),
        Expect(V, 6, 14, "voices.a.protect", "must be true or false, not the string 'yes'"),
        id="wrong-type-string-for-boolean",
    ),
    pytest.param(
        voice(text="2024-01-01"),
        Expect(V, 5, 11, "voices.a.text", "not the date 2024-01-01 (quote it"),
        id="wrong-type-date-for-text",
    ),
    pytest.param(
        "voices:\n  a: hello\n",
        Expect(V, 2, 6, "voices.a", "must be a mapping, not the string 'hello'"),
        id="wrong-type-voice-body",
    ),
    pytest.param(
        "voices:\n  - a\n",
        Expect(V, 2, 3, "voices", "must be a mapping or empty, not a list"),
        id="wrong-type-voices-list",
    ),
    pytest.param(
        "- a\n",
        Expect(V, 1, 1, "", "a mapping with a top-level `voices:` key"),
        id="file-not-a-mapping",
    ),
    pytest.param(
        "voices:\n\ta:\n",
        Expect(V, 2, 1, "voices", "invalid YAML: a tab: YAML indents with spaces only"),
        id="tab-indent",
    ),
    pytest.param(
        voice(text="Note: this is it"),
        Expect(V, 5, 15, "voices.a", 'must be quoted, e.g. text: "Note: ..."'),
        id="unquoted-colon",
    ),
    pytest.param(
        voice("    colour: red"),
        Expect(V, 6, 5, "voices.a.colour", "unknown field 'colour' (allowed: audio, description"),
        id="unknown-field",
    ),
    pytest.param(
        voice("extra: 1"),
        Expect(V, 6, 1, "extra", "unknown field 'extra' (allowed: voices)"),
        id="unknown-top-level-field",
    ),
    pytest.param(
        "voices:\n  a:\n    name: Annabelle\n    audio: ../audio/a.wav\n",
        Expect(V, 2, 3, "voices.a.text", "text is required"),
        id="missing-required-field",
    ),
    pytest.param(
        "{}\n",
        Expect(V, 1, 1, "voices", "voices is required"),
        id="missing-voices-key",
    ),
    pytest.param(
        voice().replace("  a:", "  Narrator:"),
        Expect(V, 2, 3, "voices.Narrator", "address 'Narrator' must be at most 128 lower-case"),
        id="bad-address-upper-case",
    ),
    pytest.param(
        voice().replace("  a:", "  .a:"),
        Expect(V, 2, 3, "voices..a", "address '.a' must be"),
        id="bad-address-leading-dot",
    ),
    pytest.param(
        voice().replace("  a:", "  a+b:"),
        Expect(V, 2, 3, "voices.a+b", "address 'a+b' must be"),
        id="bad-address-symbol",
    ),
    pytest.param(
        voice().replace("  a:", '  "a\\n":'),
        Expect(V, 2, 3, "voices.a\\n", "contains a control character"),
        id="address-with-a-trailing-newline",
    ),
    pytest.param(
        voice(name='"Annabelle \\e[2J"'),
        Expect(V, 3, 11, "voices.a.name", "control character U+001B"),
        id="name-with-an-escape-sequence",
    ),
    pytest.param(
        voice(name='"Annabelle\\Lnext line"'),  # YAML's \L: U+2028, a line separator
        Expect(V, 3, 11, "voices.a.name", "control character U+2028"),
        id="name-with-a-line-separator",
    ),
    pytest.param(
        voice(audio='"../audio/a\\r.wav"'),
        Expect(V, 4, 12, "voices.a.audio", "control character U+000D"),
        id="audio-path-with-a-carriage-return",
    ),
    pytest.param(
        voice().replace("  a:", "  " + "a" * 129 + ":"),
        Expect(V, 2, 3, "voices." + "a" * 57 + "...", "must be at most 128"),
        id="bad-address-too-long",
    ),
    pytest.param(
        voice("    language: fr"),
        Expect(V, 6, 15, "voices.a.language", "'fr' is not one of zh, en, ja, es, id, pt"),
        id="bad-language",
    ),
    pytest.param(
        voice("    language: EN"),
        Expect(V, 6, 15, "voices.a.language", "'EN' is not one of zh, en"),
        id="bad-language-case",
    ),
    pytest.param(
        voice("    language: no"),
        Expect(V, 6, 15, "voices.a.language", "not the boolean false (YAML reads a bare no"),
        id="bad-language-yaml-boolean",
    ),
    pytest.param(
        voice("    language: [en]"),
        Expect(V, 6, 15, "voices.a.language", "must be one of zh, en, ja, es, id, pt, not a list"),
        id="bad-language-list",
    ),
    pytest.param(
        voice("    space: abc"),
        Expect(V, 6, 12, "voices.a.space", "'abc' is not a Coze workspace id"),
        id="bad-space",
    ),
    pytest.param(
        voice("    space: -5"),
        Expect(V, 6, 12, "voices.a.space", "must be at least 0"),
        id="bad-space-negative",
    ),
    pytest.param(
        voice(name='""'),
        Expect(V, 3, 11, "voices.a.name", "must not be empty"),
        id="empty-name",
    ),
    pytest.param(
        voice() + "  a:\n    name: B\n    audio: ../audio/a.wav\n    text: T.\n",
        Expect(V, 6, 3, "voices.a", "duplicate key 'a' (first at line 2)"),
        id="duplicate-address-in-one-file",
    ),
    pytest.param(
        voice("    name: Bob"),
        Expect(V, 6, 5, "voices.a.name", "duplicate key 'name' (first at line 3)"),
        id="duplicate-field",
    ),
    pytest.param(
        voice(name='!!python/object/apply:os.system ["touch {root}/PWNED"]'),
        Expect(V, 3, 11, "voices.a.name", "tag '!!python/object/apply:os.system' is not allowed"),
        id="unsafe-tag-python-object-apply",
    ),
    pytest.param(
        voice(name="!!python/object:builtins.object {}"),
        Expect(V, 3, 11, "voices.a.name", "tag '!!python/object:builtins.object' is not allowed"),
        id="unsafe-tag-python-object",
    ),
    pytest.param(
        voice(name="!!python/name:os.system"),
        Expect(V, 3, 11, "voices.a.name", "tag '!!python/name:os.system' is not allowed"),
        id="unsafe-tag-python-name",
    ),
    pytest.param(
        voice(name="!!binary QW5uYQ=="),
        Expect(V, 3, 11, "voices.a.name", "tag '!!binary' is not allowed"),
        id="non-plain-tag-binary",
    ),
    pytest.param(
        voice(name="!vault secret"),
        Expect(V, 3, 11, "voices.a.name", "tag '!vault' is not allowed"),
        id="application-tag",
    ),
    pytest.param(
        bomb() + voice(),
        Expect(V, 3, 5, "l3", "expands to too many values through aliases"),
        id="alias-bomb-billion-laughs",
    ),
    pytest.param(
        merge_bomb() + voice(),
        Expect(V, 5, 5, "m5", "expands to too many values through aliases or merge keys"),
        id="alias-bomb-through-merge-keys",
    ),
    pytest.param(
        voice("    description: &d [*d]"),
        Expect(V, 6, 22, "voices.a.description.0", "alias *d refers to itself"),
        id="recursive-alias",
    ),
    pytest.param(
        voice("    description: *nowhere"),
        Expect(V, 6, 18, "voices.a.description", "alias *nowhere is not defined"),
        id="undefined-alias",
    ),
    pytest.param(
        voice("    description: " + "[" * 100_000 + "]" * 100_000),
        # three mappings above it: the 62nd bracket is the 65th level
        Expect(V, 6, 18 + 61, "voices.a.description.0.0.0.0.0...", "nests deeper than 64"),
        id="deep-nesting-would-crash-libyaml",
    ),
    pytest.param(
        voice() + "---\nvoices: {}\n",
        Expect(V, 6, 1, "", "more than one YAML document"),
        id="two-documents",
    ),
    pytest.param(
        voice(name="[Annabelle"),
        Expect(V, 4, 10, "voices.a.name.1", "invalid YAML: did not find expected ',' or ']'"),
        id="yaml-syntax-error",
    ),
    pytest.param(
        voice(name="Ren\xe9e").encode("latin-1"),
        Expect(V, 3, 14, "voices.a.name", "not valid UTF-8 (byte 0xe9)"),
        id="not-utf8",
    ),
    pytest.param(
        voice().encode("utf-16"),
        Expect(V, 1, 1, "", "UTF-16 or UTF-32 encoded (it has a BOM)"),
        id="utf16-with-bom",
    ),
    pytest.param(
        voice().encode("utf-32"),
        Expect(V, 1, 1, "", "UTF-16 or UTF-32 encoded (it has a BOM)"),
        id="utf32-with-bom",
    ),
    pytest.param(
        voice().encode("utf-16-le"),
        Expect(V, 1, 2, "", "NUL bytes (UTF-16 or UTF-32 text?)"),
        id="utf16-without-bom",
    ),
    pytest.param(
        b"\xef\xbb\xbf" + voice("    language: fr").encode(),
        Expect(V, 6, 15, "voices.a.language", "'fr' is not one of"),
        id="utf8-bom-keeps-columns-right",
    ),
    pytest.param(
        voice(name="x" * 2_000_000),
        Expect(V, 3, 11, "voices.a.name", "is 2000000 bytes in UTF-8; Coze allows 128"),
        id="huge-string-name",
    ),
    pytest.param(
        voice("    space: " + "x" * 1_000_000),
        Expect(V, 6, 12, "voices.a.space", "(1000000 characters) is not a Coze workspace id"),
        id="huge-string-space",
    ),
    pytest.param(
        voice("    ? " + "k" * 1_000_000, "    : v"),  # explicit: implicit keys stop at 1024
        Expect(V, 6, 7, "voices.a." + "k" * 57 + "...", "unknown field 'kkkk"),
        id="huge-string-field-name",
    ),
    pytest.param(
        voice("    space: 190:20:30"),  # YAML 1.1 base 60: 685230
        Expect(V, 6, 12, "voices.a.space", "'190:20:30' would be read as a YAML 1.1 base-60"),
        id="sexagesimal-space-id",
    ),
    pytest.param(
        voice("    space: 0735"),  # YAML 1.1 octal: 477
        Expect(V, 6, 12, "voices.a.space", "'0735' would be read as a YAML 1.1 octal number"),
        id="octal-space-id",
    ),
    pytest.param(
        voice("    space: 0x1F"),
        Expect(V, 6, 12, "voices.a.space", "YAML 1.1 hexadecimal number, not as written: quote"),
        id="hex-space-id",
    ),
    pytest.param(
        voice(name="語" * 43),
        Expect(V, 3, 11, "voices.a.name", "is 129 bytes in UTF-8; Coze allows 128"),
        id="name-over-128-bytes-in-43-characters",
    ),
    pytest.param(
        voice(text="é" * 513),
        Expect(V, 5, 11, "voices.a.text", "is 1026 bytes in UTF-8; Coze allows 1024"),
        id="text-over-1024-bytes-in-513-characters",
    ),
]


@pytest.mark.parametrize(("body", "expected"), DECLARATIONS)
def test_bad_declaration(bad: VoiceRepo, run, body: str | bytes, expected: Expect) -> None:
    """One located finding per bad declaration file; nothing written, nothing executed."""
    if isinstance(body, str):
        body = body.replace("{root}", str(bad.root))
    bad.write(V, body)
    check(bad, run, expected, ("validate", "plan"))


def test_duplicate_address_across_files(bad: VoiceRepo, run) -> None:
    """The second file to declare an address is the one reported, naming the first."""
    bad.write("voices/more.yaml", voice().replace("Annabelle", "Other Annabelle"))
    expected = Expect(V, 2, 3, "voices.a", "address 'a' is already declared at voices/more.yaml:2")
    check(bad, run, expected, ("validate", "plan"))


def test_language_missing_without_a_default(bad: VoiceRepo, run) -> None:
    bad.write_config(defaults={"space": "7350000000000000001"})
    expected = Expect(V, 2, 3, "voices.a.language", "language is required (or set defaults")
    check(bad, run, expected, ("validate", "plan"))


@pytest.mark.parametrize("size", [4 * MB + 1, 100 * MB])
def test_declaration_file_over_4_mib_is_refused_unread(bad: VoiceRepo, run, size: int) -> None:
    """A sparse declaration file past the limit (parsing takes ~70x its size in memory):
    refused from its size, never opened."""
    huge = bad.write("voices/huge.yaml", b"")
    os.truncate(huge, size)
    expected = Expect("voices/huge.yaml", 1, 1, "", f"file too large ({size} bytes")
    audit = check(bad, run, expected, ("validate", "plan"))
    assert not audit.touched(huge)


def test_declaration_file_that_is_a_fifo_is_refused_unopened(bad: VoiceRepo, run) -> None:
    """Opening a FIFO would block for ever: it is stat-ed and refused."""
    fifo = bad.root / "voices" / "pipe.yaml"
    os.mkfifo(fifo)
    expected = Expect("voices/pipe.yaml", 1, 1, "", "is not a regular file")
    audit = check(bad, run, expected, ("validate", "plan"))
    assert not audit.touched(fifo)


def test_declaration_file_symlinked_from_outside_is_refused_unread(bad: VoiceRepo, run) -> None:
    outside = bad.root.parent / "elsewhere.yaml"
    outside.write_text(voice().replace("  a:", "  b:"))
    (bad.root / "voices" / "b.yaml").symlink_to(outside)
    expected = Expect("voices/b.yaml", 1, 1, "", "resolves outside the repository")
    audit = check(bad, run, expected, ("validate", "plan"))
    assert not audit.touched(outside)


# -- audio takes ------------------------------------------------------------------


def _take(repo: VoiceRepo, name: str, data: bytes) -> None:
    repo.write(f"audio/{name}", data)


def _real_wav(repo: VoiceRepo, name: str, seconds: float = 12.0) -> Path:
    return write_wav(repo.root / "audio" / name, seconds=seconds)


def _truncated(repo: VoiceRepo) -> None:
    path = _real_wav(repo, "cut.wav")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _header_only(repo: VoiceRepo) -> None:
    path = _real_wav(repo, "header.wav")
    path.write_bytes(path.read_bytes()[:44])


def _outside_take(repo: VoiceRepo) -> Path:
    return write_wav(repo.root.parent / "outside" / "take.wav")


def _symlink_chain(repo: VoiceRepo) -> None:
    """hop.wav -> out.wav (inside) -> ../../outside/take.wav (relative, outside)."""
    audio = repo.root / "audio"
    (audio / "out.wav").symlink_to(os.path.relpath(_outside_take(repo), audio))
    (audio / "hop.wav").symlink_to("out.wav")


def _sparse(repo: VoiceRepo, name: str, size: int) -> None:
    path = repo.write(f"audio/{name}", b"")
    os.truncate(path, size)


def _device_node(repo: VoiceRepo) -> None:
    try:
        os.mknod(repo.root / "audio" / "null.wav", 0o666 | 0o020000, os.makedev(1, 3))
    except (PermissionError, AttributeError):
        pytest.skip("creating a device node needs CAP_MKNOD")


RNG = random.Random(6)
AUDIO_CASES = [
    pytest.param(
        lambda r: None, "../audio/none.wav", "audio/none.wav: file not found", id="missing"
    ),
    pytest.param(lambda r: None, "../audio", "audio: is a directory", id="a-directory"),
    pytest.param(
        lambda r: os.mkfifo(r.root / "audio" / "pipe.wav"),
        "../audio/pipe.wav",
        "audio/pipe.wav: is not a regular file",
        id="a-fifo",
    ),
    pytest.param(
        _device_node, "../audio/null.wav", "audio/null.wav: is not a regular file", id="a-device"
    ),
    pytest.param(
        lambda r: (r.root / "audio" / "null.wav").symlink_to("/dev/null"),
        "../audio/null.wav",
        "audio/null.wav: resolves outside the repository",
        id="symlink-to-dev-null",
    ),
    pytest.param(
        lambda r: None, "/dev/null", "'/dev/null' is absolute", id="device-as-absolute-path"
    ),
    pytest.param(
        lambda r: (r.root / "audio" / "out.wav").symlink_to(_outside_take(r)),
        "../audio/out.wav",
        "audio/out.wav: resolves outside the repository",
        id="symlink-leaving-the-repository",
    ),
    pytest.param(
        _symlink_chain,
        "../audio/hop.wav",
        "audio/hop.wav: resolves outside the repository",
        id="symlink-chain-leaving-the-repository",
    ),
    pytest.param(
        lambda r: (r.root / "audio" / "ext").symlink_to(_outside_take(r).parent),
        "../audio/ext/take.wav",
        "audio/ext/take.wav: resolves outside the repository",
        id="symlinked-directory-leaving-the-repository",
    ),
    pytest.param(lambda r: None, "/etc/passwd", "'/etc/passwd' is absolute", id="absolute-path"),
    pytest.param(
        lambda r: _outside_take(r),
        "../../outside/take.wav",
        "'../../outside/take.wav' leaves the repository",
        id="dotdot-escape",
    ),
    pytest.param(
        lambda r: _outside_take(r),
        "../audio/../../outside/take.wav",
        "leaves the repository",
        id="dotdot-escape-in-the-middle",
    ),
    pytest.param(
        lambda r: _outside_take(r),
        "'..\\..\\outside\\take.wav'",
        "leaves the repository",
        id="dotdot-escape-with-backslashes",
    ),
    pytest.param(lambda r: None, "'C:\\take.wav'", "is absolute", id="windows-drive-path"),
    pytest.param(
        lambda r: _sparse(r, "huge.wav", 10 * 1024 * MB),
        "../audio/huge.wav",
        "audio/huge.wav: is 10,737,418,240 bytes; Coze accepts at most 10,000,000 (10 MB)",
        id="sparse-10-gb",
    ),
    pytest.param(
        lambda r: _sparse(r, "big.wav", 10_000_001),
        "../audio/big.wav",
        "audio/big.wav: is 10,000,001 bytes; Coze accepts at most 10,000,000",
        id="one-byte-over-10-mb",
    ),
    pytest.param(
        lambda r: _take(r, "empty.wav", b""), "../audio/empty.wav", "is empty", id="empty-file"
    ),
    pytest.param(_truncated, "../audio/cut.wav", "audio/cut.wav: is truncated", id="truncated-wav"),
    pytest.param(
        _header_only, "../audio/header.wav", "audio/header.wav: is truncated", id="wav-header-only"
    ),
    pytest.param(
        lambda r: _take(r, "noise.wav", RNG.randbytes(4096)),
        "../audio/noise.wav",
        "is not audio Coze accepts (wav, mp3, ogg, m4a, aac, or .pcm)",
        id="random-bytes",
    ),
    pytest.param(
        lambda r: _take(r, "riff.wav", b"RIFF\x00\x10\x00\x00WAVE" + RNG.randbytes(4096)),
        "../audio/riff.wav",
        "cannot be decoded as wav",
        id="random-bytes-behind-a-wav-magic",
    ),
    pytest.param(
        lambda r: _take(r, "frame.mp3", b"\xff\xfb\x90\x00" + RNG.randbytes(4096)),
        "../audio/frame.mp3",
        "cannot be decoded as mp3",
        id="random-bytes-behind-an-mp3-sync",
    ),
    pytest.param(
        lambda r: _take(r, "page.ogg", b"OggS" + RNG.randbytes(4096)),
        "../audio/page.ogg",
        "cannot be decoded as ogg",
        id="random-bytes-behind-an-ogg-magic",
    ),
    pytest.param(
        lambda r: _take(r, "odd.pcm", bytes(48_000 * 12 + 1)),
        "../audio/odd.pcm",
        "pcm data must be 16-bit samples (an even number of bytes)",
        id="pcm-odd-length",
    ),
]


@pytest.mark.parametrize(("setup", "audio", "says"), AUDIO_CASES)
def test_bad_take(bad: VoiceRepo, run, setup: Setup, audio: str, says: str) -> None:
    """One located finding on the `audio` field; the take is never read when refused by
    stat (FIFO, device, over 10 MB) or by confinement (outside the repository)."""
    setup(bad)
    bad.write(V, voice(audio=audio))
    audit = check(bad, run, Expect(V, 4, 12, AUDIO, says), ("validate", "plan"))
    never_read = [
        bad.root / "audio" / n for n in ("pipe.wav", "null.wav", "huge.wav", "big.wav")
    ] + [bad.root.parent / "outside" / "take.wav", Path("/dev/null"), Path("/etc/passwd")]
    assert not [p for p in never_read if p.exists() and audit.touched(p)]


WARNINGS = [
    pytest.param(
        lambda r: (r.root / "audio" / "a.mp3").write_bytes(
            (r.root / "audio" / "a.wav").read_bytes()
        ),
        "../audio/a.mp3",
        "named like mp3 but the bytes are wav; it will be sent as audio_format=wav",
        id="mislabelled-extension",
    ),
    pytest.param(
        lambda r: _real_wav(r, "short.wav", 5.0),
        "../audio/short.wav",
        "5.0 s long; Coze recommends 10-30 s",
        id="shorter-than-10-s",
    ),
    pytest.param(
        lambda r: _real_wav(r, "long.wav", 35.0),
        "../audio/long.wav",
        "35.0 s long; Coze recommends 10-30 s",
        id="longer-than-30-s",
    ),
    pytest.param(
        lambda r: _take(r, "short.pcm", tone_wav(seconds=5, rate=24_000)[44:]),  # no header
        "../audio/short.pcm",
        "audio/short.pcm: 5.0 s long",
        id="pcm-duration-from-its-size",
    ),
]


@pytest.mark.parametrize(("setup", "audio", "says"), WARNINGS)
def test_questionable_take_warns_and_passes(
    bad: VoiceRepo, run, setup: Setup, audio: str, says: str
) -> None:
    setup(bad)
    bad.write(V, voice(audio=audio))
    check(bad, run, Expect(V, 4, 12, AUDIO, says, "warning"), ("validate", "plan"))


def test_mislabelled_take_is_sent_in_its_sniffed_format(bad: VoiceRepo, run) -> None:
    (bad.root / "audio" / "a.mp3").write_bytes((bad.root / "audio" / "a.wav").read_bytes())
    bad.write(V, voice(audio="../audio/a.mp3"))
    result = run(bad.root, "plan", "--json")
    (change,) = json.loads(result.stdout)["changes"]
    assert change["after"]["audio"]["format"] == "wav"


# -- voicectl.yaml ----------------------------------------------------------------

CONFIG = "defaults:\n  language: en\n  space: '7350000000000000001'\n"


def _state_dir_outside(repo: VoiceRepo) -> None:
    outside = repo.root.parent / "outside-state"
    outside.mkdir()
    (repo.root / "state").symlink_to(outside)


CONFIG_CASES = [
    pytest.param(
        "defaults: [en\n",
        None,
        Expect(C, 2, 1, "defaults.1", "invalid YAML: did not find expected ',' or ']'"),
        id="syntax-error",
    ),
    pytest.param(
        CONFIG + "voice: x\n",
        None,
        Expect(C, 4, 1, "voice", "unknown field 'voice' (allowed: backend, defaults, policy"),
        id="unknown-field",
    ),
    pytest.param(
        CONFIG + "state: 5\n",
        None,
        Expect(C, 4, 8, "state", "must be a string, not the number 5"),
        id="wrong-type",
    ),
    pytest.param(
        CONFIG + "voices: voices/*.yaml\n",
        None,
        Expect(C, 4, 9, "voices", "must be a list, not the string 'voices/*.yaml'"),
        id="globs-not-a-list",
    ),
    pytest.param(
        CONFIG + "voices: ['voices/***.yaml']\n",
        None,
        Expect(C, 4, 10, "voices.0", "'**' must be a whole path component"),
        id="bad-glob-double-star",
    ),
    pytest.param(
        CONFIG + "voices: ['.']\n",
        None,
        Expect(C, 4, 10, "voices.0", "names no files"),
        id="bad-glob-dot",
    ),
    pytest.param(
        CONFIG + "voices: ['']\n",
        None,
        Expect(C, 4, 10, "voices.0", "must not be empty"),
        id="bad-glob-empty",
    ),
    pytest.param(
        CONFIG + "voices: ['/etc/*.yaml']\n",
        None,
        Expect(C, 4, 10, "voices.0", "must stay inside the repository"),
        id="bad-glob-absolute",
    ),
    pytest.param(
        CONFIG + "voices: ['../*/voices/*.yaml']\n",
        None,
        Expect(C, 4, 10, "voices.0", "must stay inside the repository"),
        id="bad-glob-parent",
    ),
    pytest.param(
        CONFIG + "state: /tmp/voicectl.state.json\n",
        None,
        Expect(C, 4, 8, "state", "must stay inside the repository"),
        id="state-path-absolute",
    ),
    pytest.param(
        CONFIG + "state: ../voicectl.state.json\n",
        None,
        Expect(C, 4, 8, "state", "must stay inside the repository"),
        id="state-path-parent",
    ),
    pytest.param(
        CONFIG + "state: voices\n",
        None,
        Expect(C, 4, 8, "state", "is a directory"),
        id="state-path-a-directory",
    ),
    pytest.param(
        CONFIG + "state: state/\n",
        None,
        Expect(C, 4, 8, "state", "must name a file"),
        id="state-path-trailing-slash",
    ),
    pytest.param(
        CONFIG,
        _state_dir_outside,
        Expect(C, 1, 1, "state", "resolves outside the repository"),
        id="state-path-symlinked-outside",
    ),
    pytest.param(
        "defaults:\n  language: fr\n",
        None,
        Expect(C, 2, 13, "defaults.language", "'fr' is not one of"),
        id="bad-default-language",
    ),
    pytest.param(
        "defaults:\n  space: abc\n",
        None,
        Expect(C, 2, 10, "defaults.space", "'abc' is not a Coze workspace id"),
        id="bad-default-space",
    ),
    pytest.param(
        CONFIG + "  api_base: ftp://api.coze.cn\n",
        None,
        Expect(C, 4, 13, "defaults.api_base", "is not an http(s) URL"),
        id="api-base-not-http",
    ),
    pytest.param(
        CONFIG + "  api_base: http://api.coze.cn\n",
        None,
        Expect(C, 4, 13, "defaults.api_base", "plain http to a host that is not loopback"),
        id="api-base-plain-http",
    ),
    pytest.param(
        CONFIG + "  api_base: https://gateway.example.com\n",
        None,
        Expect(C, 4, 13, "defaults.api_base", "is not one of Coze's two sites"),
        id="api-base-not-coze",
    ),
    pytest.param(
        CONFIG + "policy:\n  max_new_voices: -1\n",
        None,
        Expect(C, 5, 19, "policy.max_new_voices", "must be at least 0"),
        id="negative-policy",
    ),
    pytest.param(
        CONFIG + "policy:\n  max_one_time_cny: lots\n",
        None,
        Expect(C, 5, 21, "policy.max_one_time_cny", "must be an integer, not the string 'lots'"),
        id="policy-wrong-type",
    ),
    pytest.param(
        CONFIG + "policy:\n  max_new_voices: 1_000\n",
        None,
        Expect(
            C,
            5,
            19,
            "policy.max_new_voices",
            "'1_000' would be read as a YAML 1.1 number with its underscores dropped",
        ),
        id="policy-underscored-number",
    ),
    pytest.param(
        CONFIG + "defaults: {}\n",
        None,
        Expect(C, 4, 1, "defaults", "duplicate key 'defaults' (first at line 1)"),
        id="duplicate-key",
    ),
    pytest.param(
        bomb() + CONFIG,
        None,
        Expect(C, 3, 5, "l3", "expands to too many values through aliases"),
        id="alias-bomb",
    ),
    pytest.param(
        "- defaults\n", None, Expect(C, 1, 1, "", "must be a mapping, not a list"), id="a-list"
    ),
    pytest.param(
        "state: !!python/object/apply:os.system ['true']\n",
        None,
        Expect(C, 1, 8, "state", "tag '!!python/object/apply:os.system' is not allowed"),
        id="unsafe-tag",
    ),
    pytest.param(
        b"defaults:\n  language: \xe9n\n",
        None,
        Expect(C, 2, 13, "defaults.language", "not valid UTF-8 (byte 0xe9)"),
        id="not-utf8",
    ),
    pytest.param(
        CONFIG.encode("utf-16"),
        None,
        Expect(C, 1, 1, "", "UTF-16 or UTF-32"),
        id="utf16",
    ),
]


@pytest.mark.parametrize(("body", "setup", "expected"), CONFIG_CASES)
def test_bad_config(
    bad: VoiceRepo, run, body: str | bytes, setup: Setup | None, expected: Expect
) -> None:
    if setup is not None:
        setup(bad)
    bad.write(C, body)
    check(bad, run, expected, ("validate", "plan"))


# -- the state file ---------------------------------------------------------------


def _valid_state() -> bytes:
    return state_io.dumps(state_io.new_state())


def _edited(**changes: object) -> bytes:
    data = json.loads(_valid_state())
    data.update(changes)
    return json.dumps(data, indent=2).encode()


_AUDIO = {
    "duration": 10.5,
    "format": "wav",
    "path": "audio/a.wav",
    "size": 4096,
    "sha256": "ab" * 32,
}


def _voice(**fields: object) -> dict[str, object]:
    """A state's voice record as voicectl writes it, with ``fields`` changed."""
    record: dict[str, object] = {
        "audio": {"duration": 10.5, "format": "wav", "path": "audio/a.wav", "size": 4096}
        | {"sha256": "ab" * 32},
        "clone_limit": 10,
        "clones_used": 1,
        "created_at": "2026-12-07T14:56:13Z",
        "language": "en",
        "name": "A voice",
        "protect": False,
        "space": "7350000000000000001",
        "text": "Hello.",
        "updated_at": "2026-12-07T14:56:13Z",
        "voice_id": "7400000000000000001",
    }
    return record | fields


STATES = [
    pytest.param(b"", ("the state file is empty", "left unchanged"), id="empty"),
    # JSON Schema counts 1.0 as an integer; voicectl never writes one, so it is refused.
    pytest.param(_edited(serial=3.0), (S, "field serial", "3.0"), id="float-serial"),
    pytest.param(
        _edited(format_version=1.0), (S, "field format_version", "1.0"), id="float-version"
    ),
    pytest.param(
        _edited(voices={"a": _voice(clones_used=2.0)}),
        (S, "field voices.a.clones_used"),
        id="float-count",
    ),
    # What Python's parser accepts or chokes on, never written by voicectl (an adversary's).
    pytest.param(
        _edited(voices={"a": _voice(name="A \ud800 voice")}),
        (S, "lone UTF-16 surrogate"),
        id="lone-surrogate",
    ),
    pytest.param(
        _valid_state().replace(b'"serial": 0', b'"serial": ' + b"9" * 4401),
        (S, "too many digits"),
        id="integer-of-4401-digits",
    ),
    pytest.param(
        _edited(voices={"a": _voice(audio={**_AUDIO, "duration": float("nan")})}),
        (S, "NaN is not JSON"),
        id="nan",
    ),
    pytest.param(
        _valid_state().replace(b'"serial": 0', b'"serial": 1e400'),
        (S, "too large"),
        id="float-overflow",
    ),
    pytest.param(
        _valid_state().replace(b'"serial": 0', b'"serial": 0, "serial": 2'),
        (S, 'duplicate key "serial"'),
        id="duplicate-key",
    ),
    pytest.param(
        _edited(voices={"a": _voice(voice_id="7400000000000000001\n")}),
        (S, "field voices.a.voice_id"),
        id="voice-id-and-newline",
    ),
    pytest.param(
        _edited(voices={"a": _voice(created_at="yesterday")}),
        (S, "field voices.a.created_at"),
        id="garbage-timestamp",
    ),
    pytest.param(
        _edited(voices={"a": _voice(updated_at="2026-12-07T14:56:13Z\n")}),
        (S, "field voices.a.updated_at"),
        id="timestamp-and-newline",
    ),
    pytest.param(b"  \n", ("the state file is empty",), id="blank"),
    pytest.param(
        _valid_state()[:40], (f"{S}:", "is not valid JSON", "left unchanged"), id="truncated"
    ),
    pytest.param(b"{not json", (f"{S}:1:2:", "is not valid JSON"), id="corrupt-json"),
    pytest.param(b'{"serial": "\xff"}', ("not UTF-8",), id="not-utf8"),
    pytest.param(b"[]", ("must hold a JSON object",), id="a-json-array"),
    pytest.param(
        _edited(serial="three"), (S, "field serial", "left unchanged"), id="hand-edited-type"
    ),
    pytest.param(
        _edited(voices={"a": {"voice_id": "7"}}),
        (S, "field voices.a", "left unchanged"),
        id="hand-edited-missing-fields",
    ),
    pytest.param(
        _edited(lineage=None, serial=-1),
        (S, "field lineage", "(and 1 more problem(s))"),
        id="hand-edited-several-fields",
    ),
    pytest.param(
        _edited(format_version=99), (S, "state format 99", "upgrade voicectl"), id="future-version"
    ),
    pytest.param(b"[" * 100_000 + b"]" * 100_000, (S, "nested too deeply"), id="nested-too-deep"),
    pytest.param(
        b'{"voices": ' + b"[" * 900 + b"]" * 900 + b"}", (S, "left unchanged"), id="nested-900"
    ),
]


@pytest.mark.parametrize("command", ["plan", "apply"])
@pytest.mark.parametrize(("body", "says"), STATES)
def test_bad_state_is_reported_and_never_overwritten(
    bad: VoiceRepo, run, body: bytes, says: tuple[str, ...], command: str
) -> None:
    """`apply` included: it must stop before any network use or write."""
    bad.write(S, body)
    everything = bad.root.parent
    before = tree(everything)
    args = ["apply", "--auto-approve"] if command == "apply" else ["plan"]
    env = {"COZE_API_TOKEN": "x", "COZE_API_BASE": "http://127.0.0.1:9"}
    env = env if command == "apply" else OFFLINE
    with audited() as audit:
        result = run(bad.root, *args, env=env)
    assert_one_error(result, *says)
    assert tree(everything) == before
    assert audit.network == []


@pytest.mark.parametrize(
    ("body", "where"),
    [
        pytest.param(_edited(serial="three"), f"{S}:5:13:", id="hand-edited"),
        pytest.param(_edited(format_version=99), f"{S}:2:21:", id="future-version"),
    ],
)
def test_bad_state_names_line_and_column(bad: VoiceRepo, run, body: bytes, where: str) -> None:
    bad.write(S, body)
    assert where in run(bad.root, "plan").output


DEEP = b"[" * 100_000 + b"]" * 100_000


def test_a_journal_or_saved_plan_nested_too_deeply_is_one_clear_error(
    bad: VoiceRepo, run, tmp_path: Path
) -> None:
    """Python's JSON parser recurses per level: a hostile file must not reach it as a bug."""
    bad.write(S + ".journal", DEEP + b"\n")
    assert_one_error(run(bad.root, "plan", env=OFFLINE), "journal is corrupt")
    (bad.root / S).with_name("voicectl.state.json.journal").unlink()
    plan = tmp_path / "deep.plan.json"
    plan.write_bytes(DEEP)
    for args in (["show", str(plan)], ["apply", str(plan)]):
        assert_one_error(run(bad.root, *args, env=OFFLINE), "nested too deeply")


# -- environment and arguments ----------------------------------------------------

BASES = [
    pytest.param("not a url", "has no scheme: write it as https://HOST", id="not-a-url"),
    pytest.param("127.0.0.1:8787", "has no scheme: write it as https://HOST", id="no-scheme"),
    pytest.param("http://127.0.0.1:8787/v1", "names an API path (/v1)", id="api-path"),
    pytest.param("ftp://api.coze.cn", "is not an http(s) URL", id="not-http"),
    pytest.param("https://", "is not an http(s) URL", id="no-host"),
    pytest.param("http://api.coze.cn", "plain http is only allowed to a loopback", id="plain-http"),
    pytest.param(
        "http://127.0.0.1.nip.io", "plain http is only allowed to a loopback", id="fake-loopback"
    ),
    pytest.param(
        "http://localhost.example.com",
        "plain http is only allowed to a loopback",
        id="fake-localhost",
    ),
]


@pytest.mark.parametrize(("base", "says"), BASES)
def test_bad_api_base_stops_apply_before_any_network_use(
    bad: VoiceRepo, run, base: str, says: str
) -> None:
    before = tree(bad.root.parent)
    with audited() as audit:
        result = run(
            bad.root, "apply", "--auto-approve", env={"COZE_API_TOKEN": "x", "COZE_API_BASE": base}
        )
    assert_one_error(result, "COZE_API_BASE", says)
    assert audit.network == []
    assert tree(bad.root.parent) == before


def test_missing_token_stops_apply_before_any_network_use(bad: VoiceRepo, run) -> None:
    before = tree(bad.root.parent)
    with audited() as audit:
        result = run(bad.root, "apply", "--auto-approve", env={"COZE_API_TOKEN": " "})
    assert_one_error(result, "COZE_API_TOKEN is not set")
    assert audit.network == []
    assert tree(bad.root.parent) == before


ARGUMENTS = [
    pytest.param(["apply", "--parallelism", "0"], "Invalid value", id="parallelism-zero"),
    pytest.param(["validate", "--no-such-flag"], "No such option", id="unknown-option"),
    pytest.param(["plan", "--format", "yaml"], "Invalid value", id="unknown-format"),
    pytest.param(
        ["plan", "--json", "--format", "markdown"], "cannot disagree", id="json-vs-format"
    ),
    pytest.param(["plan", "--target", "ghost"], "unknown address(es): ghost", id="unknown-target"),
    pytest.param(["schema", "nothing"], "Invalid value", id="unknown-schema"),
    pytest.param(["frobnicate"], "No such command", id="unknown-command"),
    pytest.param(
        ["apply", "--auto-approve", "--adopt", "a=notanid"], "expected ADDRESS=VOICE_ID", id="adopt"
    ),
]


@pytest.mark.parametrize(("args", "says"), ARGUMENTS)
def test_bad_arguments(bad: VoiceRepo, run, args: list[str], says: str) -> None:
    before = tree(bad.root.parent)
    env = {"COZE_API_TOKEN": "x"} if args[0] == "apply" else OFFLINE
    with audited() as audit:
        result = run(bad.root, *args, env=env)
    assert_one_error(result, says)
    assert audit.network == []
    assert tree(bad.root.parent) == before


def test_chdir_to_a_missing_directory(tmp_path: Path, run) -> None:
    assert_one_error(run(tmp_path / "nowhere", "validate"), "no such directory")


def test_truncated_wav_helper_really_truncates(bad: VoiceRepo) -> None:
    """The catalogue's truncated take is a WAV whose header promises more than it holds."""
    _truncated(bad)
    with wave.open(str(bad.root / "audio" / "cut.wav")) as handle:
        promised = handle.getnframes() * handle.getsampwidth()
    assert promised > (bad.root / "audio" / "cut.wav").stat().st_size
