"""Runtime faults of the Coze emulator, set over HTTP; every key is documented here.

Faults are set with ``POST /_emulator/faults`` and a JSON object. Every key is optional:
a key that is present replaces that setting, a key that is absent leaves it as it is,
and ``null`` clears it; a payload with any bad key changes nothing (HTTP 400, code
4000). ``GET /_emulator/faults`` shows the settings, with what is left of the counts;
``POST /_emulator/reset`` clears them. They live in memory only. (Token grants, fixed at
start, are in :mod:`voicectl.emulator.tokens`.)

Requests and replies:

- ``latency_ms`` (int >= 0): each Coze API request (clone, list, speech) sleeps this long
  before it is handled. Concurrent requests sleep concurrently, so N requests sent P at a
  time take about ceil(N/P) times the latency.
- ``rate_limit_qps`` (number > 0): a token bucket of that rate (burst ``max(1, qps)``)
  in front of the Coze API; a request beyond it gets HTTP 429, code 4020 (RPM exceeded,
  a documented rate-limit code) and ``Retry-After`` (whole seconds until a token is
  free, at least 1). Nothing is committed.
- ``fail`` (object): the next ``count`` requests (default 1) to ``endpoint`` (``"clone"``,
  ``"list"`` or ``"speech"``; absent or null means any of them) are refused before
  anything happens (nothing is committed) with a *reply*:

  - by default the JSON envelope with ``code`` (default 5000) and ``msg`` (default: a
    message matching the code) at HTTP ``http_status`` (200..599, default 500);
  - with ``body`` (a string), exactly that text instead, with ``content_type`` (default
    ``text/html; charset=utf-8``) at ``http_status``: a reply that is not a Coze
    envelope, such as an empty body (``""``) or a gateway's HTML error page. It carries
    no ``X-Tt-Logid``; ``code`` and ``msg`` are then unused.

  Any reply at HTTP 429 carries ``Retry-After: 1``, unless ``retry_after`` (a one-line
  string, sent verbatim: ``"60"``, ``"1e8"``, ``"inf"``, an HTTP date) gives the header
  for this reply at any status.

Clones that commit, then lose or spoil their reply (the outcome is unknown to the client):

- ``drop_after_commit`` (int >= 0): the next N clones that succeed are committed (voice
  store and ledger, on disk) and then the connection is closed without any reply: the
  lost-response case.
- ``fail_after_commit`` (object): the next ``count`` clones that succeed are committed
  (store and ledger, on disk) and then answered with the reply described as for ``fail``
  (``code``, ``http_status``, ``count``, ``msg``, ``body``, ``content_type``,
  ``retry_after``; no ``endpoint``: it is always the clone endpoint) instead of success.
  A clone that is refused (bad field, no slot, 1109, ...) spends neither count; when both
  are set, a clone spends ``drop_after_commit`` first.

List pages (``GET /v1/audio/voices``; each stays until cleared, null or false):

- ``list_page_cap`` (int >= 1): every page holds at most this many voices whatever
  ``page_size`` asks; pages are cut at ``min(page_size, cap)`` (page k holds items
  ``[(k-1)*cap, k*cap)``) and ``has_more`` stays exact. A client asking for 100 gets
  short pages with ``has_more: true``, which the docs allow: only has_more ends a list.
- ``list_repeat_from`` (int >= 2): a request for any ``page_num >= N`` gets exactly page
  N-1 again, and page N-1, once it holds any voice, says ``has_more: true`` whatever
  follows it: a client that trusts has_more loops on that page, however short the list.
  Pages before N-1 are unchanged; so is an empty page N-1 (nothing to repeat: an empty
  account still lists as empty).
- ``list_endless`` (bool): ``has_more`` is always true; pages past the end are empty.
- ``list_lag`` (int >= 0): the next N list requests (each page counts) do not show the
  voices created in the last 120 s: a list that lags behind the clones, which the docs
  do not rule out.

Coze's clock:

- ``clock_skew_s`` (number, -86400..86400, default 0): the emulator's clock runs this
  many seconds off the machine's (negative: behind): every ``create_time`` and
  ``update_time`` it sets, and the expiry of preview links, come from the skewed clock,
  as from a Coze whose clock disagrees with the client's. Times already set stay.

The order inside a request is: latency, rate limit, injected failure (``fail``),
authentication, then the endpoint itself; after a clone commits, ``drop_after_commit``
then ``fail_after_commit``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

ENDPOINTS = ("clone", "list", "speech")
LAG_SECONDS = 120  # list_lag hides the voices created this recently
RATE_LIMIT_CODE = 4020  # RPM exceeded; 4013 is a model-service error, not a rate limit
DEFAULT_FAULT_CONTENT_TYPE = "text/html; charset=utf-8"

# Default messages for the codes the emulator answers or injects, close to Coze's meaning.
CODE_MESSAGES: dict[int, str] = {
    1109: "WERError: the audio does not match the given text.",
    1123: "Upload limit reached: a voice can be uploaded at most 10 times.",
    4000: "The request parameters are incorrect.",
    4008: "The daily request limit of this account has been reached. Please try again tomorrow.",
    4009: "The system is currently at its request limit. Please try again later.",
    4011: "The balance of Coze tokens is insufficient.",
    4013: "The model service failed. Please try again later.",
    4019: "Your account has an overdue balance. Please top up and try again.",
    4020: "The requests per minute (RPM) limit has been exceeded. Please try again later.",
    4022: "The model service is in arrears. Please top up and try again.",
    4100: "authentication is invalid",
    4101: (
        "Your token does not have permission to access resource. "
        "Please verify whether the resource ID or token is correct."
    ),
    4102: "The request was blocked by risk control.",
    4200: "The resource does not exist.",
    4300: "The file is empty or missing.",
    4301: "Only one file can be uploaded per request.",
    4302: "The file exceeds the 10 MB size limit.",
    4303: "The file type is not supported.",
    4304: "The file is invalid.",
    5000: "The service encountered an internal error. Please try again later.",
}


class FaultSpecError(ValueError):
    """A ``POST /_emulator/faults`` payload that cannot be applied; nothing was changed."""


@dataclass(frozen=True)
class FailRule:
    """Injected replies still to be served (``fail`` or ``fail_after_commit``)."""

    code: int
    http_status: int
    count: int
    msg: str
    endpoint: str | None = None
    body: str | None = None  # not None: this exact text instead of the JSON envelope
    content_type: str | None = None
    retry_after: str | None = None  # the Retry-After header, verbatim

    @property
    def headers(self) -> dict[str, str]:
        if self.retry_after is not None:
            return {"Retry-After": self.retry_after}
        return {"Retry-After": "1"} if self.http_status == 429 else {}

    def to_json(self, *, with_endpoint: bool = True) -> dict[str, object]:
        shown: dict[str, object] = {
            "code": self.code,
            "http_status": self.http_status,
            "count": self.count,
            "msg": self.msg,
            "body": self.body,
            "content_type": self.content_type,
            "retry_after": self.retry_after,
        }
        return {**shown, "endpoint": self.endpoint} if with_endpoint else shown


@dataclass
class Faults:
    """The current fault settings; mutated only on the server's event loop."""

    latency_ms: int = 0
    fail: FailRule | None = None
    fail_after_commit: FailRule | None = None
    drop_after_commit: int = 0
    rate_limit_qps: float | None = None
    list_page_cap: int | None = None
    list_repeat_from: int | None = None
    list_endless: bool = False
    clock_skew_s: float = 0.0
    list_lag: int = 0
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)
    _tokens: float = field(default=0.0, repr=False)
    _refilled_at: float = field(default=0.0, repr=False)

    def to_json(self) -> dict[str, object]:
        fail, after = self.fail, self.fail_after_commit
        return {
            "latency_ms": self.latency_ms,
            "fail": fail.to_json() if fail else None,
            "fail_after_commit": after.to_json(with_endpoint=False) if after else None,
            "drop_after_commit": self.drop_after_commit,
            "rate_limit_qps": self.rate_limit_qps,
            "list_page_cap": self.list_page_cap,
            "list_repeat_from": self.list_repeat_from,
            "list_endless": self.list_endless,
            "clock_skew_s": self.clock_skew_s,
            "list_lag": self.list_lag,
        }

    def reset(self) -> None:
        for name, parse in _SETTINGS.items():
            setattr(self, name, parse(None))

    def update(self, payload: object) -> None:
        """Apply a faults payload; validates everything first, so a bad one changes nothing."""
        if not isinstance(payload, Mapping):
            raise FaultSpecError("the faults payload must be a JSON object")
        unknown = sorted(set(payload) - set(_SETTINGS))
        if unknown:
            raise FaultSpecError(f"unknown fault setting(s): {', '.join(unknown)}")
        changes = {name: _SETTINGS[name](value) for name, value in payload.items()}
        for name, value in changes.items():
            setattr(self, name, value)
        if "rate_limit_qps" in changes:
            self._tokens, self._refilled_at = self._burst(), self.clock()

    def take_failure(self, endpoint: str) -> FailRule | None:
        """Consume one injected failure aimed at ``endpoint``, if any is left."""
        rule = self.fail
        if rule is None or rule.endpoint not in (None, endpoint):
            return None
        self.fail = _spend(rule)
        return rule

    def take_lag(self) -> bool:
        """Consume one lagging list request; true when this one must not show new voices."""
        if self.list_lag <= 0:
            return False
        self.list_lag -= 1
        return True

    def take_drop(self) -> bool:
        """Consume one lost response; true when this committed clone must get no reply."""
        if self.drop_after_commit <= 0:
            return False
        self.drop_after_commit -= 1
        return True

    def take_after_commit(self) -> FailRule | None:
        """Consume one spoiled reply; not None when this committed clone must get it."""
        rule = self.fail_after_commit
        if rule is not None:
            self.fail_after_commit = _spend(rule)
        return rule

    def page(self, total: int, page_num: int, page_size: int) -> tuple[int, int, bool]:
        """The items ``[start, stop)`` of ``total`` matching voices on a list page, and
        its ``has_more``: exact without list faults, as the list faults say with them."""
        size = min(page_size, self.list_page_cap or page_size)
        last = None if self.list_repeat_from is None else self.list_repeat_from - 1
        if last is not None and page_num > last:
            page_num = last
        start = (page_num - 1) * size
        repeated = page_num == last and total > start  # page N-1 holds a voice to repeat
        has_more = repeated or self.list_endless or total > start + size
        return min(start, total), min(start + size, total), has_more

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


def _spend(rule: FailRule) -> FailRule | None:
    return replace(rule, count=rule.count - 1) if rule.count > 1 else None


def _int(value: object, name: str, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise FaultSpecError(f"{name} must be an integer >= {minimum}, not {value!r}")
    return value


def _count(name: str) -> Callable[[object], int]:
    return lambda value: 0 if value is None else _int(value, name, minimum=0)


def _optional_int(name: str, minimum: int) -> Callable[[object], int | None]:
    return lambda value: None if value is None else _int(value, name, minimum=minimum)


def _flag(value: object) -> bool:
    if value is None:
        return False
    if not isinstance(value, bool):
        raise FaultSpecError(f"list_endless must be true, false or null, not {value!r}")
    return value


def _skew(value: object) -> float:
    if value is None:
        return 0.0
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise FaultSpecError(f"clock_skew_s must be a finite number, not {value!r}")
    if abs(value) > 86400:
        raise FaultSpecError("clock_skew_s must be within a day (-86400..86400)")
    return float(value)


def _qps(value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise FaultSpecError(f"rate_limit_qps must be a number > 0, not {value!r}")
    if not math.isfinite(value):
        raise FaultSpecError("rate_limit_qps must be finite")
    return float(value)


def _rule(name: str, *, with_endpoint: bool) -> Callable[[object], FailRule | None]:
    keys = {"code", "http_status", "count", "msg", "body", "content_type", "retry_after"}
    keys |= {"endpoint"} if with_endpoint else set()

    def parse(value: object) -> FailRule | None:
        if value is None:
            return None
        if not isinstance(value, Mapping):
            raise FaultSpecError(f"{name} must be an object or null")
        unknown = sorted(set(value) - keys)
        if unknown:
            raise FaultSpecError(f"unknown {name} setting(s): {', '.join(unknown)}")
        code = _int(_or(value.get("code"), 5000), f"{name}.code", minimum=1)
        status = _int(_or(value.get("http_status"), 500), f"{name}.http_status", minimum=200)
        if status > 599:
            raise FaultSpecError(f"{name}.http_status must be an HTTP status (200..599)")
        count = _int(_or(value.get("count"), 1), f"{name}.count", minimum=1)
        endpoint = value.get("endpoint")
        if endpoint is not None and endpoint not in ENDPOINTS:
            raise FaultSpecError(f"{name}.endpoint must be one of {', '.join(ENDPOINTS)} or null")
        msg = _or(value.get("msg"), CODE_MESSAGES.get(code, f"injected fault (code {code})"))
        if not isinstance(msg, str) or not msg:
            raise FaultSpecError(f"{name}.msg must be a non-empty string")
        body, content_type = value.get("body"), value.get("content_type")
        if body is not None and not isinstance(body, str):
            raise FaultSpecError(f"{name}.body must be a string or null")
        if body is None and content_type is not None:
            raise FaultSpecError(f"{name}.content_type needs a body")
        if body is not None:
            content_type = _or(content_type, DEFAULT_FAULT_CONTENT_TYPE)
            if not isinstance(content_type, str) or not content_type.isprintable():
                raise FaultSpecError(f"{name}.content_type must be a one-line string")
        retry_after = value.get("retry_after")
        if retry_after is not None and not (
            isinstance(retry_after, str) and retry_after.isprintable() and retry_after.isascii()
        ):
            raise FaultSpecError(f"{name}.retry_after must be a one-line ASCII string or null")
        return FailRule(code, status, count, msg, endpoint, body, content_type, retry_after)

    return parse


def _or(value: object, default: object) -> object:
    return default if value is None else value


_SETTINGS: dict[str, Callable[[object], object]] = {
    "latency_ms": _count("latency_ms"),
    "fail": _rule("fail", with_endpoint=True),
    "fail_after_commit": _rule("fail_after_commit", with_endpoint=False),
    "drop_after_commit": _count("drop_after_commit"),
    "rate_limit_qps": _qps,
    "list_page_cap": _optional_int("list_page_cap", 1),
    "list_repeat_from": _optional_int("list_repeat_from", 2),
    "list_endless": _flag,
    "clock_skew_s": _skew,
    "list_lag": _count("list_lag"),
}
