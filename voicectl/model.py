"""The nouns of voicectl: declarations, takes, state records, changes and plans.

Plain frozen data, no I/O. Everything else converts to and from these.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, NamedTuple

CLONE_LIMIT = 10
"""A Coze voice id can be cloned at most this many times (the first clone included)."""
CNY_PER_NEW_VOICE = 138
CNY_PER_VOICE_MONTH = 1
SPEECHES_PER_RETRAIN = 2  # the voice's reference sentence before and after (billed speech)
LANGUAGES = ("zh", "en", "ja", "es", "id", "pt")
# voicectl's key of a voice (never sent to Coze); the schemas hold the same pattern.
ADDRESS_PATTERN = "[a-z0-9][a-z0-9_.-]*"
AUDIO_FORMATS = ("wav", "mp3", "ogg", "m4a", "aac", "pcm")


class Spelled(str, Enum):
    """An enum that is a ``str``: it compares, prints and encodes to JSON as its value,
    as the plan file, the journal and the event log spell it."""

    def __str__(self) -> str:
        return str.__str__(self)  # the value: the str this member is

    def __format__(self, spec: str) -> str:
        return format(str.__str__(self), spec)


class Action(Spelled):
    """What a change does to one address ("create", ...)."""

    CREATE = "create"
    RETRAIN = "retrain"
    REPLACE = "replace"
    MOVE = "move"
    UPDATE = "update"
    NOOP = "noop"
    ORPHAN = "orphan"
    BLOCKED = "blocked"


ACTIONS = tuple(a.value for a in Action)
# Actions that send audio to Coze and so spend a clone.
CLONING_ACTIONS = frozenset({Action.CREATE, Action.RETRAIN, Action.REPLACE})
# Actions that create a new voice id and so cost money.
NEW_VOICE_ACTIONS = frozenset({Action.CREATE, Action.REPLACE})


@dataclass(frozen=True)
class Take:
    """An audio take as found on disk: where it is and what its bytes are."""

    path: str  # relative to the repository root, POSIX separators
    sha256: str
    size: int
    format: str  # Coze's audio_format, sniffed from the bytes
    duration: float  # seconds
    sample_rate: int | None = None
    channels: int | None = None


@dataclass(frozen=True)
class Declaration:
    """One voice as declared in YAML, with defaults from voicectl.yaml applied."""

    address: str
    name: str
    audio: str  # relative to the repository root, POSIX separators
    text: str
    language: str
    space: str | None
    preview_text: str | None = None
    description: str | None = None
    protect: bool | None = None  # None: not said (a recorded protection stays)
    file: str = ""  # the declaring file, relative to the repository root
    line: int = 0  # of the address key
    column: int = 0
    audio_line: int = 0  # of the audio field, for problems with the take
    audio_column: int = 0


@dataclass(frozen=True)
class DesiredVoice:
    """A declaration together with the facts of its take: the planner's input."""

    decl: Declaration
    take: Take


@dataclass(frozen=True)
class TakeRef:
    """What the state remembers of the take a voice was last cloned from."""

    sha256: str
    path: str
    format: str
    size: int
    duration: float
    # The git blob id of the file when it was last seen clean with this sha256 (for Git
    # LFS, the pointer's blob): lets a fresh clone trust the take without reading it.
    git_blob: str = ""


@dataclass(frozen=True)
class RemoteFacts:
    """What Coze's list said of a voice when it was last read (refresh, apply, import)."""

    name: str
    available_training_times: int
    update_time: int
    read_at: str
    model_type: str = ""  # big or small (what speech speeds it takes); "": not said


@dataclass(frozen=True)
class VoiceRecord:
    """A voice voicectl cloned (or adopted), as recorded in the state."""

    address: str
    voice_id: str
    space: str | None
    name: str
    language: str
    text: str
    preview_text: str | None
    take: TakeRef
    clones_used: int
    protect: bool
    created_at: str
    updated_at: str
    orphaned_at: str | None = None
    verified: bool = True  # False for an imported voice: its take is not known to Coze's
    remote: RemoteFacts | None = None
    # Why this voice id (or its last retrain) is not proven voicectl's own clone: found on
    # Coze's list after a lost reply, when a colleague's clone would look the same. None
    # once proven, or confirmed by a person (`voicectl import`).
    unproven: str | None = None

    @property
    def clones_left(self) -> int:
        return max(0, CLONE_LIMIT - self.clones_used)

    @property
    def limit(self) -> int:
        return CLONE_LIMIT


class AudioSpec(NamedTuple):
    """A take as a change carries it: the bytes to upload (after), or those last cloned
    from (before; ``verified`` False for an imported voice's take Coze never confirmed)."""

    sha256: str
    path: str
    format: str
    size: int
    duration: float
    verified: bool = True


class VoiceSpec(NamedTuple):
    """A voice's data as a change carries it: as declared (``Change.after``) or as the
    state records it (``Change.before``). Encoded to JSON by :mod:`voicectl.planfile`.
    A named tuple, not a frozen dataclass: a plan builds two for every voice, and at
    10,000 voices a dataclass's field-by-field ``__init__`` is a measurable share."""

    name: str
    language: str
    space: str | None
    text: str
    preview_text: str | None
    protect: bool | None  # None: not said in the declaration (a recorded one stays)
    audio: AudioSpec

    @classmethod
    def declared(cls, voice: DesiredVoice) -> VoiceSpec:
        d, t = voice.decl, voice.take
        audio = AudioSpec(t.sha256, t.path, t.format, t.size, t.duration)
        return cls(d.name, d.language, d.space, d.text, d.preview_text, d.protect, audio)

    @classmethod
    def recorded(cls, record: VoiceRecord) -> VoiceSpec:
        t = record.take
        audio = AudioSpec(t.sha256, t.path, t.format, t.size, t.duration, record.verified)
        return cls(
            record.name,
            record.language,
            record.space,
            record.text,
            record.preview_text,
            record.protect,
            audio,
        )


@dataclass(frozen=True)
class TakeEntry:
    """One clone of one take, in the state's index keyed by audio SHA-256."""

    voice_id: str
    address: str
    clone: int  # 1 for the create, 2..10 for retrains
    applied_at: str
    logid: str = ""  # Coze's X-Tt-Logid of the clone request
    commit: str = ""  # the git commit the apply ran from, when in a git work tree
    uncommitted: bool = False  # the work tree held changes that commit does not


@dataclass(frozen=True)
class State:
    """The committed record of what exists on Coze because of this repository."""

    lineage: str
    serial: int
    voices: dict[str, VoiceRecord] = field(default_factory=dict)
    orphans: tuple[VoiceRecord, ...] = ()
    takes: dict[str, tuple[TakeEntry, ...]] = field(default_factory=dict)

    def voice_ids(self) -> set[str]:
        """Every voice id the state holds, declared or orphaned."""
        return {r.voice_id for r in (*self.voices.values(), *self.orphans)}


@dataclass(frozen=True)
class RemoteVoice:
    """The facts Coze's list endpoint gives about one voice (used on refresh)."""

    voice_id: str
    name: str
    available_training_times: int
    create_time: int
    update_time: int
    language: str = ""
    state: str = "cloned"
    model_type: str = ""  # big or small; "": not one of those
    preview_audio: str = ""  # the signed link to its preview clip; "": none usable


@dataclass(frozen=True)
class Budget:
    """Clones left on a voice id before and after a change (None: no voice id)."""

    before: int | None
    after: int | None
    limit: int = CLONE_LIMIT


@dataclass(frozen=True)
class Cost:
    one_time_cny: int = 0
    monthly_cny_delta: int = 0


@dataclass(frozen=True)
class Change:
    """One action of a plan for one address, with why and what it costs."""

    address: str
    action: Action
    reasons: tuple[str, ...]
    voice_id: str | None
    before: VoiceSpec | None
    after: VoiceSpec | None
    budget: Budget
    cost: Cost
    from_address: str | None = None
    message: str = ""
    notes: tuple[str, ...] = ()

    @property
    def spends_clone(self) -> bool:
        return self.action in CLONING_ACTIONS


@dataclass(frozen=True)
class TakeVerdict:
    """A take's quality (voicectl.sound.quality's figures, as JSON) and what in it the
    thresholds of ``policy.takes`` warn of; no figures when it could not be measured."""

    figures: Mapping[str, Any]
    warnings: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {**self.figures, "warnings": list(self.warnings)}


@dataclass(frozen=True)
class Plan:
    changes: tuple[Change, ...]
    # The repository's warnings (takes, names), as validate says them: for the reviewer.
    warnings: tuple[str, ...] = ()
    # The quality of each take a change clones from, by sha256 (see TakeVerdict).
    takes: Mapping[str, TakeVerdict] = field(default_factory=dict)
    # Billed speech calls apply makes to keep each retrained voice's sound before and
    # after (voicectl.apply.snapshots): at most this many, none when 0.
    speech_calls: int = 0

    @property
    def summary(self) -> dict[str, int]:
        counts = dict.fromkeys(ACTIONS, 0)
        for change in self.changes:
            counts[change.action] += 1
        return counts

    @property
    def cost(self) -> Cost:
        return Cost(
            one_time_cny=sum(c.cost.one_time_cny for c in self.changes),
            monthly_cny_delta=sum(c.cost.monthly_cny_delta for c in self.changes),
        )

    @property
    def clones_spent(self) -> int:
        return sum(1 for c in self.changes if c.spends_clone)

    @property
    def actionable(self) -> tuple[Change, ...]:
        """Changes that apply would carry out (everything but noop and blocked)."""
        return tuple(c for c in self.changes if c.action not in ("noop", "blocked"))

    @property
    def has_changes(self) -> bool:
        return any(c.action != "noop" for c in self.changes)


# Control and format characters, and the line and paragraph separators (a line break to
# a terminal or a Markdown table); but the joiners that emoji and Persian words need.
_CONTROL = ("Cc", "Cf", "Zl", "Zp")
_JOINERS = "\u200c\u200d"


def control_character(text: str, allow: str = "") -> str | None:
    """The first control or format character of ``text`` (C0, C1, DEL, bidi controls,
    line and paragraph separators) but the joiners and those in ``allow``; None when
    there is none. What a declared name may not hold,
    and so what voicectl rewrites in a name read from Coze: every other name, spaces of
    any script included, compares with the declared one as it is."""
    if text.isprintable():  # the common case, in C: no character of those categories
        return None
    for char in text:
        if char in allow:
            continue
        if unicodedata.category(char) in _CONTROL and char not in _JOINERS:
            return char
    return None


@dataclass(frozen=True)
class PlanOptions:
    """What a person asked of a plan beyond the declarations (plan's options)."""

    targets: frozenset[str] = frozenset()
    excludes: frozenset[str] = frozenset()
    retrain: frozenset[str] = frozenset()
    replace: frozenset[str] = frozenset()
    allow_protected: bool = False
    allow_duplicate_name: bool = False
    snapshots: bool = True  # keep a retrained voice's sound before and after (2 speeches)
    # Addresses whose clone an interrupted apply left of unknown outcome: the next apply
    # looks for it on Coze first, so a voice of its name there is no reason to block.
    in_doubt: frozenset[str] = frozenset()
