"""The emulator's voices and clone ledger, and the rules Coze applies to them.

Everything lives in memory and is written to ``<data dir>/coze-emulator.json`` on every
commit (temp file, fsync, ``os.replace``, fsync of the directory), so a restart with the
same data dir sees the same voices, ledger and id sequence. A commit writes the file
first and only then changes memory: a failed write changes nothing.

Voice ids are 19-digit numeric strings starting with 7, Snowflake-like (milliseconds
shifted left 12 bits over a fixed base) and strictly increasing, even across restarts.
Two fixed system voices are always visible; they are not stored.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

from voicectl.emulator.voicing import Take

DATA_FILE = "coze-emulator.json"
FORMAT = 1
MAX_TRAININGS = 10  # per voice, the first clone included
DEFAULT_SPACE_ID = "7350000000000000000"  # the caller's personal space
DEFAULT_LANGUAGE = "zh"
DEFAULT_PREVIEW_TEXT = "你好，我是你的专属AI克隆声音，希望未来可以一起好好相处哦"
LANGUAGE_NAMES = {
    "zh": "中文",
    "en": "英语",
    "ja": "日语",
    "es": "西班牙语",
    "id": "印尼语",
    "pt": "葡萄牙语",
}
MAX_NAME_BYTES = 128
MAX_TEXT_BYTES = 1024
WER_MARKER = "[wer-mismatch]"  # in a clone's ``text``: fail with 1109, commit nothing
_ID_BASE = 7_400_000_000_000_000_000


class EmulatorError(Exception):
    """The emulator cannot start: unusable data dir, bad token spec, address in use.

    Its own error, not voicectl's: the emulator stands apart from voicectl's internals
    (the command line turns it into one of its errors)."""


class ApiError(Exception):
    """A Coze business error: becomes the JSON envelope with this code and msg."""

    def __init__(self, code: int, msg: str, http_status: int = 200) -> None:
        super().__init__(f"{code}: {msg}")
        self.code, self.msg, self.http_status = code, msg, http_status


@dataclass(frozen=True)
class Voice:
    """One voice as the emulator keeps it (``space_id`` is never sent to clients)."""

    voice_id: str
    name: str
    space_id: str
    language_code: str
    preview_text: str
    available_training_times: int
    create_time: int
    update_time: int
    model_type: str = "big"
    state: str = "cloned"
    is_system_voice: bool = False
    model_name: str = "seed-icl-1.0"
    description: str = ""
    pitch_hz: float = 0.0  # what its speech is made from (a Take's): never sent to clients
    timbre: int = 0

    def to_api(self, preview_audio: str) -> dict[str, object]:
        """The Voice object of the list reply: the 12 fields cozepy requires, plus model_name."""
        return {
            "voice_id": self.voice_id,
            "name": self.name,
            "is_system_voice": self.is_system_voice,
            "language_code": self.language_code,
            "language_name": LANGUAGE_NAMES.get(self.language_code, self.language_code),
            "preview_text": self.preview_text,
            "preview_audio": preview_audio,
            "available_training_times": self.available_training_times,
            "create_time": self.create_time,
            "update_time": self.update_time,
            "model_type": self.model_type,
            "state": self.state,
            "model_name": self.model_name,
        }


@dataclass(frozen=True)
class LedgerEntry:
    """One clone the emulator committed (and, for a create, billed)."""

    voice_id: str
    kind: str  # "create" | "retrain"
    voice_name: str
    space_id: str
    audio_sha256: str
    at: str  # ISO 8601, UTC

    def to_json(self) -> dict[str, object]:
        return {**asdict(self), "cost_cny": 138 if self.kind == "create" else 0}


def _system_voice(voice_id: str, name: str, language: str, model_type: str, text: str) -> Voice:
    return Voice(
        voice_id=voice_id,
        name=name,
        space_id="",
        language_code=language,
        preview_text=text,
        available_training_times=0,
        create_time=1718870400,
        update_time=1718870400,
        model_type=model_type,
        is_system_voice=True,
        model_name=f"seed-tts-{model_type}",
    )


SYSTEM_VOICES = (
    _system_voice("7382552865023201819", "通用女声", "zh", "big", "你好，欢迎使用扣子语音合成。"),
    _system_voice("7382552865023218203", "Friendly Narrator", "en", "small", "Hello there."),
)


class VoiceStore:
    """Custom voices, the ledger and the id sequence: a JSON snapshot plus an fsync'd
    append-only log of the clones since, folded into the snapshot on the next start."""

    def __init__(
        self,
        data_dir: Path,
        *,
        clock: Callable[[], float] = time.time,
        slot_quota: int | None = None,
    ) -> None:
        self.path = Path(data_dir) / DATA_FILE
        self.clock = clock
        self.slot_quota = slot_quota
        self._voices: dict[str, Voice] = {}
        self._ledger: list[LedgerEntry] = []
        self._last_id = 0
        self._load()

    # -- reading -------------------------------------------------------------------

    def get(self, voice_id: str) -> Voice | None:
        if voice_id in self._voices:
            return self._voices[voice_id]
        return next((v for v in SYSTEM_VOICES if v.voice_id == voice_id), None)

    @property
    def ledger(self) -> list[LedgerEntry]:
        return list(self._ledger)

    def query(
        self, *, include_system: bool, model_type: str | None, states: Iterable[str]
    ) -> list[Voice]:
        """Matching voices in the list order: newest create_time first, then voice_id desc."""
        wanted = set(states)
        pool = list(self._voices.values()) + (list(SYSTEM_VOICES) if include_system else [])
        found = [
            v
            for v in pool
            if v.state in wanted and (model_type is None or v.model_type == model_type)
        ]
        return sorted(found, key=lambda v: (v.create_time, int(v.voice_id)), reverse=True)

    # -- committing -------------------------------------------------------------------

    def create(self, space_id: str, fields: Mapping[str, str | None], take: Take) -> Voice:
        """A new clone, from a clone request's text fields, in a new slot (else 4019)."""
        self.check_slot()
        now = int(self.clock())
        voice = Voice(
            voice_id=self._next_id(),
            name=fields["voice_name"] or "",
            space_id=space_id,
            language_code=fields.get("language") or DEFAULT_LANGUAGE,
            preview_text=fields.get("preview_text") or DEFAULT_PREVIEW_TEXT,
            available_training_times=MAX_TRAININGS - 1,
            create_time=now,
            update_time=now,
            description=fields.get("description") or "",
            pitch_hz=take.pitch_hz,
            timbre=take.timbre,
        )
        self._commit(voice, self._entry(voice, "create", take.sha256))
        return voice

    def check_slot(self) -> None:
        """4019 when every purchased voice slot of the account is taken (init slots count).

        Slots are the account's: Coze's plans include one cloned voice and each expansion
        pack adds one; the docs do not say they are per workspace, and the account-wide
        reading is the stricter one.
        """
        if self.slot_quota is None:
            return  # no quota: skip counting (it would cost O(voices) per clone)
        if len(self._voices) >= self.slot_quota:
            raise ApiError(
                4019,
                f"No voice slot left: all {self.slot_quota} purchased voice slots of the "
                "account are in use. A new voice needs a voice-clone expansion pack "
                "(bought by an admin); retraining an existing voice needs no slot.",
            )

    def check_retrain(self, voice_id: str) -> Voice:
        """The custom voice a retrain may overwrite; 4200 unknown, 4101 system, 1123 used up."""
        voice = self.get(voice_id)
        if voice is None:
            raise ApiError(4200, f"The voice {voice_id} does not exist.")
        if voice.is_system_voice:
            raise ApiError(4101, "A system voice cannot be retrained.", 403)
        if voice.available_training_times <= 0:
            raise ApiError(
                1123,
                f"Upload limit reached: a voice can be uploaded at most {MAX_TRAININGS} times "
                f"(voice {voice_id}).",
            )
        return voice

    def retrain(self, voice: Voice, fields: Mapping[str, str | None], take: Take) -> Voice:
        """Overwrite a voice checked by :meth:`check_retrain`; fields left out are kept."""
        trained = replace(
            voice,
            name=fields["voice_name"] or voice.name,
            language_code=fields.get("language") or voice.language_code,
            preview_text=fields.get("preview_text") or voice.preview_text or DEFAULT_PREVIEW_TEXT,
            description=fields.get("description") or voice.description,
            available_training_times=voice.available_training_times - 1,
            update_time=max(int(self.clock()), voice.update_time),
            state="cloned",
            pitch_hz=take.pitch_hz,
            timbre=take.timbre,
        )
        self._commit(trained, self._entry(trained, "retrain", take.sha256))
        return trained

    def add_slot(self, name: str, space_id: str) -> Voice:
        """A voice slot made in the console: state ``init`` until its first upload."""
        now = int(self.clock())
        voice = Voice(
            voice_id=self._next_id(),
            name=name,
            space_id=space_id,
            language_code=DEFAULT_LANGUAGE,
            preview_text="",
            available_training_times=MAX_TRAININGS,
            create_time=now,
            update_time=now,
            state="init",
        )
        self._commit(voice, None)
        return voice

    def reset(self) -> None:
        """Forget every voice and the ledger; the id sequence keeps going up."""
        self._write({}, [])
        self._voices, self._ledger = {}, []

    # -- internals ----------------------------------------------------------------

    def _next_id(self) -> str:
        ms = int(self.clock() * 1000)
        return str(max(self._last_id + 1, _ID_BASE + (ms << 12)))

    def _entry(self, voice: Voice, kind: str, audio_sha256: str) -> LedgerEntry:
        at = datetime.fromtimestamp(self.clock(), timezone.utc)
        return LedgerEntry(
            voice_id=voice.voice_id,
            kind=kind,
            voice_name=voice.name,
            space_id=voice.space_id,
            audio_sha256=audio_sha256,
            at=at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        )

    def _commit(self, voice: Voice, entry: LedgerEntry | None) -> None:
        """Make one clone durable, then visible: a line appended to the log and fsync'd.

        Appending costs the same however many voices the store holds (rewriting the
        whole file per clone made a long apply slower with every voice); the log is
        folded into the snapshot when the store is next opened.
        """
        last_id = max(self._last_id, int(voice.voice_id))
        record = {"voice": asdict(voice), "entry": asdict(entry) if entry else None}
        line = json.dumps({**record, "last_id": str(last_id)}, ensure_ascii=False) + "\n"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        created = not self._log_path.exists()
        with open(self._log_path, "a", encoding="utf-8") as log:
            start = log.tell()
            try:
                log.write(line)
                log.flush()
                os.fsync(log.fileno())
            except BaseException:
                # Nothing was acknowledged: take back any part of the line (a disk full).
                log.close()
                with open(self._log_path, "r+b") as handle:
                    handle.truncate(start)
                raise
        if created:
            _fsync_dir(self.path.parent)
        self._voices[voice.voice_id] = voice
        if entry:
            self._ledger.append(entry)
        self._last_id = last_id

    @property
    def _log_path(self) -> Path:
        return self.path.with_name(self.path.name + ".log")

    def _write(
        self, voices: dict[str, Voice], ledger: list[LedgerEntry], last_id: int | None = None
    ) -> None:
        """Replace the snapshot atomically, then drop the log it now contains."""
        document = {
            "format": FORMAT,
            "last_id": str(self._last_id if last_id is None else last_id),
            "voices": [asdict(v) for v in voices.values()],
            "ledger": [asdict(e) for e in ledger],
        }
        text = json.dumps(document, ensure_ascii=False, indent=1)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{DATA_FILE}.", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        self._log_path.unlink(missing_ok=True)
        _fsync_dir(self.path.parent)

    def _load(self) -> None:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            text = None
        except OSError as exc:
            raise EmulatorError(f"cannot read the emulator data file {self.path}: {exc}") from exc
        try:
            if text is not None:
                document = json.loads(text)
                if document.get("format") != FORMAT:
                    raise ValueError(f"unsupported format {document.get('format')!r}")
                self._voices = {v["voice_id"]: Voice(**v) for v in document["voices"]}
                self._ledger = [LedgerEntry(**e) for e in document["ledger"]]
                self._last_id = int(document["last_id"])
            logged = self._replay()
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise EmulatorError(f"the emulator data file {self.path} is corrupt: {exc}") from exc
        if logged:  # fold the log into the snapshot, and start a new one
            self._write(self._voices, self._ledger)

    def _replay(self) -> bool:
        """Apply the log's complete lines, if there is a log; a torn last line (a crash
        mid-append) was never acknowledged, so it is dropped."""
        try:
            lines = self._log_path.read_text(encoding="utf-8").splitlines(keepends=True)
        except FileNotFoundError:
            return False
        for line in lines:
            if not line.endswith("\n"):
                break
            record = json.loads(line)
            voice = Voice(**record["voice"])
            self._voices[voice.voice_id] = voice
            if record["entry"] is not None:
                self._ledger.append(LedgerEntry(**record["entry"]))
            self._last_id = max(self._last_id, int(record["last_id"]))
        return True


def _fsync_dir(directory: Path) -> None:
    # Makes the rename itself durable; not possible (nor needed) on Windows.
    if os.name != "posix":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
