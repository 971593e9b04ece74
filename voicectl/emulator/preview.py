"""Voice previews: the signed ``preview_audio`` URL of each voice, and the audio behind it.

Each Voice record carries ``preview_audio`` =
``<base>/_emulator/preview/<voice_id>.mp3?x-expires=<unix s>&x-signature=<hmac>``, a
signed URL as on Coze's CDN. It expires 30 days after the later of the voice's last
training and the start of the current day (so it changes once a day). ``GET`` on it
needs no bearer token (the signature is the credential): a valid signature and an
unexpired ``x-expires`` (against the store's clock) answer 200 ``audio/mpeg``; a bad or
missing signature, or an expired link, 403 (code 4101); an unknown voice 404 (4200).

The audio is a real, decodable MP3 (MPEG-1 Layer III, 44.1 kHz mono, 32 kbit/s, about
1.25 s): a chime of three notes picked from the voice id and its training (update time
and trainings left), so each voice, and each retraining of it, sounds different. It is
encoded here without an encoder library: each granule holds a single non-zero spectral
line, coded in the count1 region with Huffman table B, so every frame is a plain tone.
"""

from __future__ import annotations

import hashlib
import hmac

from starlette.requests import Request
from starlette.responses import Response

from voicectl.emulator.store import Voice, VoiceStore
from voicectl.emulator.wire import envelope, new_logid

PREVIEW_ROUTE = "/_emulator/preview/{voice_id}.mp3"
VALID_DAYS = 30
_SECRET = b"voicectl-emulator-preview"  # fixed: links stay valid across restarts
_DAY = 86400

# MPEG-1 Layer III, no CRC, 32 kbit/s, 44.1 kHz, mono, original: 1152 samples per frame.
_HEADER = b"\xff\xfb\x10\xc4"
_FRAME_NUMERATOR, _RATE = 144 * 32000, 44100  # frame bytes = 104.49: padded now and then
_GAIN = 200  # global_gain: each coded line decodes at 2 ** ((200 - 210) / 4) of full scale
_NOTES, _FRAMES_PER_NOTE = 3, 16


def preview_url(base_url: str, voice: Voice, now: float) -> str:
    """The voice's signed preview link on this host."""
    expires = max(voice.update_time, int(now) // _DAY * _DAY) + VALID_DAYS * _DAY
    query = f"x-expires={expires}&x-signature={_signature(voice.voice_id, expires)}"
    path = PREVIEW_ROUTE.format(voice_id=voice.voice_id)
    return f"{base_url.rstrip('/')}{path}?{query}"


async def preview_reply(request: Request, store: VoiceStore) -> Response:
    """``GET`` of a preview link: the voice's chime, or 403/404 as an envelope."""
    voice_id = request.path_params["voice_id"]
    raw_expires = request.query_params.get("x-expires", "")
    signature = request.query_params.get("x-signature", "")
    expires = int(raw_expires) if raw_expires.isascii() and raw_expires.isdigit() else -1
    if not hmac.compare_digest(signature, _signature(voice_id, expires)):
        return envelope(new_logid(), 4101, "The preview link's signature is invalid.", status=403)
    if store.clock() > expires:
        return envelope(new_logid(), 4101, "The preview link has expired.", status=403)
    voice = store.get(voice_id)
    if voice is None:
        return envelope(new_logid(), 4200, f"The voice {voice_id} does not exist.", status=404)
    seed = f"{voice.voice_id}:{voice.update_time}:{voice.available_training_times}"
    return Response(chime_mp3(seed.encode()), media_type="audio/mpeg")


def chime_mp3(seed: bytes) -> bytes:
    """Three notes of about 0.42 s each, picked by ``seed``, as MPEG-1 Layer III frames."""
    digest = hashlib.sha256(seed).digest()
    # Spectral lines 8..39 of 576: about 330 Hz to 1.5 kHz (a line is 38.3 Hz wide).
    lines = [8 + digest[n] % 32 for n in range(_NOTES)]
    stream, spare = bytearray(), 0
    for n in range(_NOTES * _FRAMES_PER_NOTE):
        step = n % _FRAMES_PER_NOTE
        edge = min(step, _FRAMES_PER_NOTE - 1 - step)  # the first and last frames are softer
        spare += _FRAME_NUMERATOR % _RATE
        padded = spare >= _RATE
        spare -= _RATE if padded else 0
        stream += _frame(lines[n // _FRAMES_PER_NOTE], _GAIN - 4 * max(0, 2 - edge), padded)
    return bytes(stream)


def _frame(line: int, gain: int, padded: bool) -> bytes:
    """One frame whose two granules each hold the value +1 at spectral ``line``."""
    quads, position = divmod(line, 4)
    # Huffman count1 table B: 4 bits per quadruple, each the inverse of |value| (0 or 1),
    # then a sign bit per non-zero value (0: positive). Lines after it are zero.
    codeword = 15 - (8 >> position)
    granule = ((((1 << 4 * quads) - 1) << 4 | codeword) << 1, 4 * quads + 5)
    bits = _Bits()
    bits.put(0, 9 + 5 + 4)  # main_data_begin (no bit reservoir), private bits, scfsi
    for _ in range(2):
        bits.put(granule[1], 12)  # part2_3_length: no scalefactors, just the Huffman bits
        bits.put(0, 9)  # big_values: none, every line is in the count1 region
        bits.put(gain, 8)
        bits.put(0, 4 + 1 + 15 + 4 + 3 + 1 + 1)  # scalefac_compress .. scalefac_scale
        bits.put(1, 1)  # count1table_select: table B
    for _ in range(2):
        bits.put(*granule)
    payload = _HEADER[:2] + bytes([_HEADER[2] | padded << 1]) + _HEADER[3:] + bits.to_bytes()
    size = _FRAME_NUMERATOR // _RATE + padded
    return payload + bytes(size - len(payload))


class _Bits:
    """A big-endian bit writer."""

    def __init__(self) -> None:
        self.value, self.length = 0, 0

    def put(self, value: int, width: int) -> None:
        self.value, self.length = self.value << width | value, self.length + width

    def to_bytes(self) -> bytes:
        pad = -self.length % 8
        return (self.value << pad).to_bytes((self.length + pad) // 8, "big")


def _signature(voice_id: str, expires: int) -> str:
    message = f"{voice_id}:{expires}".encode()
    return hmac.new(_SECRET, message, hashlib.sha256).hexdigest()[:32]
