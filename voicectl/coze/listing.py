"""What tells a listing of Coze's voice list whole, page by page as it is read.

Coze pages its list with ``has_more`` and no cursor, so a voice created or removed while
it is read shifts the pages after it; a gateway may serve a page again. :class:`Pages`
takes the pages in order and raises ListingIncomplete for anything that shows the
listing cannot be whole, never a shorter answer: callers conclude from a listing that a
voice is absent.
"""

from __future__ import annotations

from voicectl.coze import replies
from voicectl.coze.transport import Deadline
from voicectl.errors import ListingIncomplete
from voicectl.model import RemoteVoice

MAX_EMPTY_PAGES = 5  # empty pages in a row that still claim more: the listing never ends


class Pages:
    """The pages of one listing, taken in order, within ``deadline`` and at most
    ``max_voices`` voices."""

    def __init__(self, max_voices: int, deadline: Deadline) -> None:
        self.max_voices, self.deadline = max_voices, deadline
        self.previous: tuple[str, ...] = ()
        self.empty = 0  # empty pages in a row
        self.first_seen: dict[str, int] = {}  # each voice id, and the page it was first on

    def take(self, numbered: tuple[int, replies.Page]) -> tuple[list[RemoteVoice], bool]:
        """A page's voices not seen before, and whether it is the last; in order.

        A voice created while the list is read shifts the pages after it: an id may
        show again on the next page, and is read once. Further back, a repeat is a
        page served again, and what it stands in place of was never shown."""
        number, result = numbered
        if result.ids and result.ids == self.previous:
            raise ListingIncomplete(f"page {number} repeats the page before it")
        for voice_id in result.ids:
            first = self.first_seen.setdefault(voice_id, number)
            if first < number - 1:
                raise ListingIncomplete(
                    f"voice {voice_id} is on page {first} and again on page {number}"
                )
        if len(self.first_seen) > self.max_voices:
            raise ListingIncomplete(
                f"the list holds more than {self.max_voices:,} voices by page {number}"
            )
        if not self.deadline.left():
            raise ListingIncomplete(f"the list was not read to its end within {self.deadline}")
        self.empty = 0 if result.ids else self.empty + 1
        if self.empty >= MAX_EMPTY_PAGES and result.has_more:
            raise ListingIncomplete(
                f"{self.empty} empty pages in a row up to page {number} still say has_more"
            )
        self.previous = result.ids
        fresh, kept = [], set()
        for voice in result.voices:
            if self.first_seen[voice.voice_id] == number and voice.voice_id not in kept:
                kept.add(voice.voice_id)
                fresh.append(voice)
        return fresh, not result.has_more
