"""Fault injection settings of the Coze emulator: token grants, and faults set over HTTP.

Token grants make authentication and permission failures (4100, 4101) reproducible. They
are fixed at start from token specs (``voicectl emulator --token SPEC``, repeatable)::

    TOKEN                                  every scope, every space
    TOKEN:scopes=listVoice,createSpeech    only these scopes (createVoice, listVoice, createSpeech)
    TOKEN:spaces=7350000000000000000,123   only voices in these spaces
    TOKEN:scopes=createVoice:spaces=123    both limits; ``scopes=`` alone grants no scope at all

With no spec at all, any non-empty bearer token is accepted with every scope and space.
A request without ``Authorization: Bearer <known token>`` gets 4100 (HTTP 401); one whose
token lacks the endpoint's scope, or the voice's space, gets 4101 (HTTP 403).

Runtime faults are set with ``POST /_emulator/faults`` and a JSON object. Every key is
optional: a key that is present replaces that setting, a key that is absent leaves it
as it is, and ``null`` clears it; a payload with any bad key changes nothing (HTTP 400,
code 4000). ``GET /_emulator/faults`` shows the settings, with what is left of the
counts; ``POST /_emulator/reset`` clears them. They live in memory only.

- ``latency_ms`` (int >= 0): each Coze API request (clone, list, speech) sleeps this long
  before it is handled. Concurrent requests sleep concurrently, so N requests sent P at a
  time take about ceil(N/P) times the latency.
- ``fail`` (object): the next ``count`` requests (default 1) to ``endpoint`` (``"clone"``,
  ``"list"`` or ``"speech"``; absent or null means any of them) get the JSON envelope with
  ``code`` (default 5000) and ``msg`` (default: a message matching the code) at HTTP
  ``http_status`` (200..599, default 500). Nothing is committed. A 429 carries
  ``Retry-After: 1``.
- ``drop_after_commit`` (int >= 0): the next N successful clones are committed (voice
  store and ledger, on disk) and then the connection is closed without any reply: the
  lost-response case.
- ``rate_limit_qps`` (number > 0): a token bucket of that rate (burst ``max(1, qps)``)
  in front of the Coze API; a request beyond it gets HTTP 429, code 4013 and
  ``Retry-After`` (whole seconds until a token is free, at least 1).

The order inside a request is: latency, rate limit, injected failure, authentication,
then the endpoint itself.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from voicectl.emulator.store import EmulatorError

ENDPOINTS = ("clone", "list", "speech")
SCOPES = ("createVoice", "listVoice", "createSpeech")

RATE_LIMIT_CODE = 4013

# Default messages for injected codes, close to what Coze says for them.
CODE_MESSAGES: dict[int, str] = {
    4000: "The request parameters are incorrect.",
    4009: "The system is currently at its request limit. Please try again later.",
    4011: "The balance of Coze tokens is insufficient.",
    4013: "The request rate exceeds the limit. Please try again later.",
    4019: "Your account has an overdue balance. Please top up and try again.",
    4020: "The RPM limit has been exceeded. Please try again later.",
    4100: "authentication is invalid",
    4101: (
        "Your token does not have permission to access resource. "
        "Please verify whether the resource ID or token is correct."
    ),
    4200: "The resource does not exist.",
    5000: "The service encountered an internal error. Please try again later.",
}


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


class FaultSpecError(ValueError):
    """A ``POST /_emulator/faults`` payload that cannot be applied; nothing was changed."""


@dataclass(frozen=True)
class FailRule:
    """Injected failures still to be served."""

    code: int
    http_status: int
    count: int
    endpoint: str | None
    msg: str

    def to_json(self) -> dict[str, object]:
        return {
            "code": self.code,
            "http_status": self.http_status,
            "count": self.count,
            "endpoint": self.endpoint,
            "msg": self.msg,
        }


@dataclass
class Faults:
    """The current fault settings; mutated only on the server's event loop."""

    latency_ms: int = 0
    fail: FailRule | None = None
    drop_after_commit: int = 0
    rate_limit_qps: float | None = None
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)
    _tokens: float = field(default=0.0, repr=False)
    _refilled_at: float = field(default=0.0, repr=False)

    def to_json(self) -> dict[str, object]:
        return {
            "latency_ms": self.latency_ms,
            "fail": self.fail.to_json() if self.fail else None,
            "drop_after_commit": self.drop_after_commit,
            "rate_limit_qps": self.rate_limit_qps,
        }

    def reset(self) -> None:
        self.latency_ms, self.fail, self.drop_after_commit = 0, None, 0
        self.rate_limit_qps = None

    def update(self, payload: object) -> None:
        """Apply a faults payload; validates everything first, so a bad one changes nothing."""
        if not isinstance(payload, Mapping):
            raise FaultSpecError("the faults payload must be a JSON object")
        unknown = sorted(
            set(payload) - {"latency_ms", "fail", "drop_after_commit", "rate_limit_qps"}
        )
        if unknown:
            raise FaultSpecError(f"unknown fault setting(s): {', '.join(unknown)}")
        changes: dict[str, object] = {}
        if "latency_ms" in payload:
            changes["latency_ms"] = _int(payload["latency_ms"], "latency_ms", minimum=0, null=0)
        if "drop_after_commit" in payload:
            value = payload["drop_after_commit"]
            changes["drop_after_commit"] = _int(value, "drop_after_commit", minimum=0, null=0)
        if "fail" in payload:
            changes["fail"] = _fail_rule(payload["fail"])
        if "rate_limit_qps" in payload:
            changes["rate_limit_qps"] = _qps(payload["rate_limit_qps"])
        for name, value in changes.items():
            setattr(self, name, value)
        if "rate_limit_qps" in changes:
            self._tokens, self._refilled_at = self._burst(), self.clock()

    def take_failure(self, endpoint: str) -> FailRule | None:
        """Consume one injected failure aimed at ``endpoint``, if any is left."""
        rule = self.fail
        if rule is None or rule.endpoint not in (None, endpoint):
            return None
        self.fail = replace(rule, count=rule.count - 1) if rule.count > 1 else None
        return rule

    def take_drop(self) -> bool:
        """Consume one lost response; true when this committed clone must get no reply."""
        if self.drop_after_commit <= 0:
            return False
        self.drop_after_commit -= 1
        return True

    def admit(self) -> int | None:
        """Take a token from the rate limiter: None if admitted, else Retry-After seconds."""
        qps = self.rate_limit_qps
        if qps is None:
            return None
        now = self.clock()
        self._tokens = min(self._burst(), self._tokens + (now - self._refilled_at) * qps)
        self._refilled_at = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return None
        return max(1, math.ceil((1.0 - self._tokens) / qps))

    def _burst(self) -> float:
        return max(1.0, self.rate_limit_qps or 0.0)


def _int(value: object, name: str, *, minimum: int, null: int) -> int:
    if value is None:
        return null
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise FaultSpecError(f"{name} must be an integer >= {minimum}, not {value!r}")
    return value


def _qps(value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise FaultSpecError(f"rate_limit_qps must be a number > 0, not {value!r}")
    if not math.isfinite(value):
        raise FaultSpecError("rate_limit_qps must be finite")
    return float(value)


def _fail_rule(value: object) -> FailRule | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise FaultSpecError("fail must be an object or null")
    unknown = sorted(set(value) - {"code", "http_status", "count", "endpoint", "msg"})
    if unknown:
        raise FaultSpecError(f"unknown fail setting(s): {', '.join(unknown)}")
    code = _int(value.get("code", 5000), "fail.code", minimum=1, null=5000)
    status = _int(value.get("http_status", 500), "fail.http_status", minimum=200, null=500)
    if status > 599:
        raise FaultSpecError(f"fail.http_status must be an HTTP status (200..599), not {status}")
    count = _int(value.get("count", 1), "fail.count", minimum=1, null=1)
    endpoint = value.get("endpoint")
    if endpoint is not None and endpoint not in ENDPOINTS:
        raise FaultSpecError(f"fail.endpoint must be one of {', '.join(ENDPOINTS)} or null")
    msg = value.get("msg")
    if msg is None:
        msg = CODE_MESSAGES.get(code, f"injected fault (code {code})")
    if not isinstance(msg, str) or not msg:
        raise FaultSpecError("fail.msg must be a non-empty string")
    return FailRule(code=code, http_status=status, count=count, endpoint=endpoint, msg=msg)
