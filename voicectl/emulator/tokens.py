"""Token grants of the Coze emulator: which token may call which endpoint, in which space.

Token grants make authentication and permission failures (4100, 4101) reproducible. They
are fixed at start from token specs (``voicectl emulator --token SPEC``, repeatable)::

    TOKEN                                  every scope, every space
    TOKEN:scopes=listVoice,createSpeech    only these scopes (createVoice, listVoice, createSpeech)
    TOKEN:spaces=7350000000000000000,123   only voices in these spaces
    TOKEN:scopes=createVoice:spaces=123    both limits; ``scopes=`` alone grants no scope at all

With no spec at all, any non-empty bearer token is accepted with every scope and space.
A request without ``Authorization: Bearer <known token>`` gets 4100 (HTTP 401); one whose
token lacks the endpoint's scope, or the voice's space, gets 4101 (HTTP 403).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from voicectl.emulator.store import EmulatorError

SCOPES = ("createVoice", "listVoice", "createSpeech")


@dataclass(frozen=True)
class TokenGrant:
    """What one token may do; None means no limit."""

    scopes: frozenset[str] | None = None
    spaces: frozenset[str] | None = None

    def covers(self, space_id: str) -> bool:
        return self.spaces is None or space_id in self.spaces


def parse_token_specs(specs: Sequence[str]) -> dict[str, TokenGrant]:
    """Token specs to grants; errors name a spec by its position, never by its token."""
    grants: dict[str, TokenGrant] = {}
    for number, spec in enumerate(specs, start=1):
        token, *options = spec.split(":")
        if not token or token != token.strip():
            raise EmulatorError(f"token spec #{number}: the token is empty or has blanks")
        limits: dict[str, frozenset[str]] = {}
        for option in options:
            key, sep, value = option.partition("=")
            if not sep or key not in ("scopes", "spaces") or key in limits:
                raise EmulatorError(
                    f"token spec #{number}: expected scopes=A,B or spaces=ID,ID after ':'"
                )
            limits[key] = frozenset(item.strip() for item in value.split(",") if item.strip())
        unknown = sorted(limits.get("scopes", frozenset()) - set(SCOPES))
        if unknown:
            raise EmulatorError(
                f"token spec #{number}: unknown scope(s) {', '.join(unknown)} "
                f"(known: {', '.join(SCOPES)})"
            )
        if token in grants:
            raise EmulatorError(f"token spec #{number} repeats an earlier token")
        grants[token] = TokenGrant(limits.get("scopes"), limits.get("spaces"))
    return grants
