"""Reading a clone request: its multipart form, checked as Coze does before anything runs.

The checks, in order (contract section 9.6; the order is INFERRED): no ``file`` part
4300; two or more 4301; over 10 MB 4302; an empty file 4300; ``voice_name`` missing,
empty or over 128 bytes 4000; ``audio_format`` missing 4000, not one Coze takes 4303;
``language`` unknown 4000; ``text`` over 1024 bytes 4000; then the bytes not being the
declared ``audio_format`` 4304 (:mod:`voicectl.emulator.audiocheck`). Nothing is
committed on any of them.
"""

from __future__ import annotations

from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request

from voicectl.emulator.audiocheck import check_audio, check_format_name, check_size
from voicectl.emulator.store import LANGUAGE_NAMES, MAX_NAME_BYTES, MAX_TEXT_BYTES, ApiError

CLONE_FIELDS = (
    "voice_name",
    "audio_format",
    "language",
    "voice_id",
    "preview_text",
    "text",
    "space_id",
    "description",
)


async def clone_form(request: Request) -> tuple[bytes, dict[str, str | None]]:
    """The audio and the text fields of a clone (absent or empty fields are None).

    Parts are told apart by name only: never by filename or Content-Type.
    """
    try:
        form = await request.form(max_files=64, max_fields=64)
    except HTTPException as exc:
        raise ApiError(4000, f"The multipart body cannot be parsed: {exc.detail}") from exc
    files = form.getlist("file")
    if not files:
        raise ApiError(4300, "The file is missing: send the audio in the multipart part 'file'.")
    if len(files) > 1:
        raise ApiError(4301, "Only one file can be uploaded per request.")
    upload = files[0]
    if isinstance(upload, UploadFile):
        check_size(upload.size or 0)  # before reading a spooled file into memory
    audio = await upload.read() if isinstance(upload, UploadFile) else _undecode(upload)
    if not audio:
        raise ApiError(4300, "The uploaded file is empty.")
    check_size(len(audio))
    fields: dict[str, str | None] = {}
    for name in CLONE_FIELDS:
        value = form.get(name)
        if isinstance(value, UploadFile):  # a text part that came with a filename
            try:
                value = (await value.read()).decode("utf-8")
            except UnicodeDecodeError as exc:
                raise ApiError(4000, f"{name} is not valid UTF-8.") from exc
        fields[name] = value or None
    audio_format = check_clone_fields(
        name=fields["voice_name"],
        audio_format=fields["audio_format"],
        language=fields["language"],
        text=fields["text"],
    )
    check_audio(audio, audio_format)
    return audio, fields


def check_clone_fields(
    *, name: str | None, audio_format: str | None, language: str | None, text: str | None
) -> str:
    """Coze's checks on a clone's text fields; returns the (supported) audio_format."""
    if not name or not name.strip():
        raise ApiError(4000, "voice_name is required and cannot be empty.")
    if len(name.encode()) > MAX_NAME_BYTES:
        raise ApiError(4000, f"voice_name exceeds {MAX_NAME_BYTES} bytes.")
    if not audio_format:
        raise ApiError(4000, "audio_format is required.")
    check_format_name(audio_format)
    if language and language not in LANGUAGE_NAMES:
        raise ApiError(4000, f"language must be one of {', '.join(LANGUAGE_NAMES)}.")
    if len((text or "").encode()) > MAX_TEXT_BYTES:
        raise ApiError(4000, f"text exceeds {MAX_TEXT_BYTES} bytes.")
    return audio_format


def _undecode(value: str) -> bytes:
    # A file part without a filename arrives as text: Starlette decoded it as UTF-8, or as
    # Latin-1 where that failed (as it does for real audio). Undo whichever it was.
    try:
        raw = value.encode("latin-1")
        raw.decode("utf-8")
    except UnicodeEncodeError:
        return value.encode("utf-8")
    except UnicodeDecodeError:
        return raw
    return value.encode("utf-8")  # raw being valid UTF-8, Starlette never fell back
