"""Pacing requests to Coze: the backoff policy and the shared rate-limit throttle.

Pure policy with an injectable clock and sleep, so tests need not wait; the client
applies it around each request.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from voicectl.errors import WaitBudgetSpent

WAIT_BUDGET_SECONDS = 600.0  # all the waiting one command may do, unless told otherwise
ANNOUNCE_FROM = 1.0  # waits shorter than this pass without a word


# Waits before a lost clone missing from the list is concluded never made (read again
# after each): the docs do not say the list shows a new voice at once.
SETTLE_SECONDS = (2.0, 5.0)
# A clone of unknown outcome (a gateway's reply, in Coze's format or not, a lost
# connection, the 600 s deadline, a kill) is concluded never made, if Coze does not list
# it, only this long after it was sent: until then it may be in Coze's hands. The
# deadline, and as long again.
IN_HANDS_SECONDS = 1200.0


class WaitBudget:
    """All the waiting one command does between requests (backoff, Retry-After, the
    throttle's hold), bounded in wall time and announced.

    Waits that overlap (threads held back by the same rate limit) count once: what is
    spent is the wall time during which anything waited. A wait that would take the total
    past ``total`` raises :class:`WaitBudgetSpent` instead of sleeping, so a server that
    asks again and again for a minute's patience cannot hold a CI job for most of an hour.
    Each wait of a second or more that adds to the total is reported to ``announce`` (the
    command line prints it on stderr). Safe to share between threads; it is the ``sleep``
    of a :class:`Retry`.
    """

    def __init__(
        self,
        total: float = WAIT_BUDGET_SECONDS,
        *,
        announce: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        to_raise: str = "give the command a larger wait budget",
    ) -> None:
        self.total, self.spent = total, 0.0
        self.to_raise = to_raise  # how the operator gives more (the CLI names its setting)
        self.announce, self.clock, self._sleep = announce, clock, sleep
        self._until = float("-inf")  # when the waits already counted end
        self._lock = threading.Lock()

    def __call__(self, seconds: float) -> None:
        with self._lock:
            start = self.clock()
            end = start + seconds
            added = max(0.0, end - max(start, self._until))
            if self.spent + added > self.total:
                raise WaitBudgetSpent(
                    f"a wait of {seconds:.0f} s for Coze would pass the {self.total:g} s "
                    f"wait budget ({self.spent:.0f} s spent waiting so far), so the request "
                    f"was not sent. Try again later, or {self.to_raise}"
                )
            self.spent += added
            self._until = max(self._until, end)
        if self.announce is not None and added >= ANNOUNCE_FROM:
            self.announce(
                f"waiting {seconds:.1f} s before the next request to Coze "
                f"({self.spent:.1f} s of the {self.total:g} s wait budget, this wait included)"
            )
        self._sleep(seconds)


@dataclass(frozen=True)
class Retry:
    """Backoff policy; ``sleep`` is injectable so tests need not wait."""

    attempts: int = 6
    # A 429 storm slows an apply down rather than failing it: a request Coze rejected for
    # its rate was not carried out, so it is sent again, for minutes if need be.
    rate_limit_attempts: int = 40
    base: float = 0.5
    cap: float = 8.0
    jitter: float = 0.25  # rate-limit waits are lengthened by up to this share, at random
    sleep: Callable[[float], None] = time.sleep

    def delay(self, attempt: int, retry_after: float | None) -> float:
        backoff = min(self.cap, self.base * 2**attempt)
        return float(max(backoff, min(retry_after, 60.0))) if retry_after is not None else backoff

    def rate_delay(self, attempt: int, retry_after: float | None) -> float:
        """The wait after a rate-limit rejection: Coze's Retry-After when it gives one (the
        throttle, not a growing wait, is what slows the apply down), else exponential;
        spread so that the senders it stopped together do not all come back at once."""
        if retry_after is None:
            wait = self.delay(attempt, None)
        else:
            wait = max(self.base, min(retry_after, 60.0))
        return wait * (1 + random.uniform(0, self.jitter))


class Throttle:
    """How many requests of one client may be in flight, adapted to Coze's rate limit.

    Additive increase, multiplicative decrease (TCP's rule): a rate-limit rejection halves
    the window, or the most requests that were in flight if fewer (once per round:
    rejections of requests sent before the last cut do not cut again), and holds back
    every request not yet sent until its Retry-After has passed; each answer that is not
    a rejection widens the window by 1/window, up to ``ceiling``. Safe to share between
    threads.
    """

    def __init__(
        self,
        ceiling: int = 64,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.ceiling, self.window = ceiling, float(ceiling)
        self.clock, self.sleep = clock, sleep
        self.in_flight = self.round = 0
        self.busiest = 0  # the most requests in flight at once since the last cut
        self.resume_at = 0.0
        self._changed = threading.Condition()

    @contextmanager
    def slot(self, *, hold_back: bool = True) -> Iterator[Slot]:
        """A place for one request; ``hold_back=False`` for one that has just waited its
        own Retry-After."""
        if hold_back:
            with self._changed:
                pause = self.resume_at - self.clock()
            if pause > 0:
                self.sleep(pause)
        with self._changed:
            while self.in_flight >= max(1, int(self.window)):
                self._changed.wait()
            self.in_flight += 1
            self.busiest = max(self.busiest, self.in_flight)
            slot = Slot(self.round)
        try:
            yield slot
        finally:
            with self._changed:
                self.in_flight -= 1
                if slot.pause is None:
                    self.window = min(float(self.ceiling), self.window + 1 / self.window)
                else:
                    if slot.round == self.round:
                        self.window = max(1.0, min(self.window, self.busiest) / 2)
                        self.busiest = self.in_flight
                        self.round += 1
                    self.resume_at = max(self.resume_at, self.clock() + slot.pause)
                self._changed.notify_all()


@dataclass
class Slot:
    round: int
    pause: float | None = None  # set when Coze rejected the request for its rate
