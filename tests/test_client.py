"""The Coze client against the emulator: typed errors, retries, paging, base URLs."""

from __future__ import annotations

import contextlib
import select
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import http_client, write_wav
from voicectl.coze.client import CozeClient, Retry, Throttle, check_base_url
from voicectl.coze.pacing import WaitBudget
from voicectl.emulator.server import running_emulator
from voicectl.errors import (
    CozeError,
    ListingIncomplete,
    OutcomeUnknown,
    TransportError,
    VoicectlError,
    WaitBudgetSpent,
)

TOKEN = "pat_client_test"


class Sleeps(list[float]):
    """An injected sleep that records the delays instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def base(tmp_path: Path) -> Iterator[str]:
    with running_emulator(
        tmp_path / "data", tokens=[TOKEN, "pat_list_only:scopes=listVoice"]
    ) as url:
        yield url


@pytest.fixture
def take(tmp_path: Path) -> Path:
    return write_wav(tmp_path / "take.wav")


def client(base: str, token: str = TOKEN, sleeps: Sleeps | None = None) -> CozeClient:
    return CozeClient(
        http_client(base), token, Retry(sleep=sleeps if sleeps is not None else Sleeps())
    )


def clone(c: CozeClient, take: Path, **fields: object) -> str:
    args = {
        "audio": take,
        "audio_format": "wav",
        "voice_name": "Narrator",
        "language": "en",
        "text": "hello",
        "preview_text": None,
        "space_id": None,
        **fields,
    }
    return c.clone(**args).voice_id  # type: ignore[arg-type]


def faults(base: str, **settings: object) -> None:
    httpx.post(f"{base}/_emulator/faults", json=settings).raise_for_status()


def test_clone_returns_the_new_voice_id_and_retrain_keeps_it(base: str, take: Path) -> None:
    c = client(base)
    voice_id = clone(c, take)
    assert voice_id.isdigit() and len(voice_id) == 19
    assert clone(c, take, voice_id=voice_id) == voice_id
    (voice,) = [v for v in c.voices() if v.voice_id == voice_id]
    assert voice.available_training_times == 8


def test_list_pages_until_the_end(base: str, take: Path) -> None:
    c = client(base)
    ids = {clone(c, take, voice_name=f"v{i}") for i in range(5)}
    assert {v.voice_id for v in c.voices(page_size=2)} == ids


@pytest.mark.parametrize("ahead", [1, 3, 8])
def test_pages_read_several_at_once_give_each_voice_once_in_order(
    base: str, take: Path, ahead: int
) -> None:
    c = client(base)
    ids = [clone(c, take, voice_name=f"v{i}") for i in range(11)]
    listed = [v.voice_id for v in c.voices(page_size=2, ahead=ahead)]
    assert sorted(listed) == sorted(ids) and len(listed) == 11
    assert listed == [v.voice_id for v in c.voices(page_size=2, ahead=1)]


@pytest.mark.parametrize("expected", [0, 4, 11, 30])
def test_expected_voices_ask_for_their_pages_at_once_and_still_list_each_once(
    base: str, take: Path, expected: int
) -> None:
    """However far the state's count is from the account's (fewer, equal, many more)."""
    c = client(base)
    ids = [clone(c, take, voice_name=f"v{i}") for i in range(11)]
    listed = [v.voice_id for v in c.voices(page_size=2, expected=expected)]
    assert listed == [v.voice_id for v in c.voices(page_size=2, ahead=1)]
    assert sorted(listed) == sorted(ids)


def test_list_stops_at_the_page_cap(base: str, take: Path) -> None:
    c = client(base)
    for i in range(3):
        clone(c, take, voice_name=f"v{i}")
    with pytest.raises(ListingIncomplete, match="has_more was still true after 2 pages"):
        list(c.voices(page_size=1, max_pages=2))


@pytest.mark.parametrize(
    ("token", "code", "hint"),
    [("pat_wrong", 4100, "region"), ("pat_list_only", 4101, "createVoice")],
)
def test_auth_errors_are_typed_with_a_hint_and_no_token(
    base: str, take: Path, token: str, code: int, hint: str
) -> None:
    with pytest.raises(CozeError) as caught:
        clone(client(base, token), take)
    assert caught.value.code == code and hint in caught.value.message
    assert caught.value.logid and caught.value.logid in caught.value.message
    assert token not in caught.value.message


def test_transcript_mismatch_is_1109(base: str, take: Path) -> None:
    with pytest.raises(CozeError) as caught:
        clone(client(base), take, text="[wer-mismatch]")
    assert caught.value.code == 1109 and "transcript" in caught.value.message


def test_the_eleventh_clone_is_refused_with_the_limit_hint(base: str, take: Path) -> None:
    c = client(base)
    voice_id = clone(c, take)
    for _ in range(9):
        clone(c, take, voice_id=voice_id)
    with pytest.raises(CozeError) as caught:
        clone(c, take, voice_id=voice_id)
    assert caught.value.code == 1123 and "--replace" in caught.value.message


def test_bad_request_is_4000(base: str, take: Path) -> None:
    with pytest.raises(CozeError) as caught:
        clone(client(base), take, language="xx")
    assert caught.value.code == 4000


def test_rate_limited_clone_is_retried_honouring_retry_after(base: str, take: Path) -> None:
    sleeps = Sleeps()
    faults(base, fail={"code": 4020, "http_status": 429, "count": 3, "endpoint": "clone"})
    clone(client(base, sleeps=sleeps), take)
    assert len(sleeps) == 3 and all(s >= 1.0 for s in sleeps)  # the emulator says Retry-After: 1
    ledger = httpx.get(f"{base}/_emulator/ledger").json()["clones"]
    assert len(ledger) == 1


def test_a_5xx_on_clone_is_an_unknown_outcome_not_a_retry(base: str, take: Path) -> None:
    sleeps = Sleeps()
    faults(base, fail={"code": 5000, "http_status": 503, "count": 1, "endpoint": "clone"})
    with pytest.raises(OutcomeUnknown):
        clone(client(base, sleeps=sleeps), take)
    assert sleeps == []


def test_a_dropped_reply_is_an_unknown_outcome(base: str, take: Path) -> None:
    faults(base, drop_after_commit=1)
    with pytest.raises(OutcomeUnknown, match="may or may not"):
        clone(client(base), take)


def test_list_retries_5xx_with_exponential_backoff(base: str) -> None:
    sleeps = Sleeps()
    faults(base, fail={"code": 5000, "http_status": 500, "count": 3, "endpoint": "list"})
    assert list(client(base, sleeps=sleeps).voices()) == []
    assert sleeps == [0.5, 1.0, 2.0]


def test_list_gives_up_after_the_attempts(base: str) -> None:
    faults(base, fail={"code": 5000, "http_status": 500, "count": 50, "endpoint": "list"})
    with pytest.raises(ListingIncomplete, match="page 1: Coze error 5000"):
        list(client(base).voices())


def test_an_unreachable_server_is_a_transport_error(take: Path) -> None:
    c = CozeClient(http_client("http://127.0.0.1:9"), TOKEN, Retry(attempts=2, sleep=Sleeps()))
    with pytest.raises(TransportError, match="cannot reach Coze"):
        clone(c, take)


@pytest.mark.parametrize(
    "good",
    [
        "https://api.coze.cn",
        "https://api.coze.com/",
        "http://127.0.0.1:8787",
        "http://localhost:1",
        "http://[::1]:8080",
    ],
)
def test_good_bases(good: str) -> None:
    assert check_base_url(good) == good.rstrip("/")


@pytest.mark.parametrize(
    "bad", ["http://api.coze.cn", "http://10.0.0.1", "ftp://127.0.0.1", "api.coze.cn", ""]
)
def test_bad_bases(bad: str) -> None:
    with pytest.raises(VoicectlError, match="COZE_API_BASE"):
        check_base_url(bad)


def test_tls_verification_is_on_for_https() -> None:
    c = http_client("https://api.coze.cn")
    transport = c._transport  # httpx keeps the SSL context on its pool
    assert transport._pool._ssl_context.verify_mode.name == "CERT_REQUIRED"  # type: ignore[attr-defined]


def test_a_take_is_streamed_from_disk_not_read_into_memory(base: str, tmp_path: Path) -> None:
    """A 24 MB upload leaves a few chunks in memory at a time (Coze refuses it as over
    its 10 MB limit only once it has all arrived)."""
    big = tmp_path / "big.wav"
    with open(big, "wb") as handle:
        handle.truncate(24 * 1024 * 1024)
    c = client(base)
    tracemalloc.start()
    try:
        with pytest.raises(CozeError) as caught:
            clone(c, big)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert caught.value.code == 4302
    assert peak < 6 * 1024 * 1024, f"{peak / 1e6:.1f} MB held at once"


class Clock:
    """An injected clock and sleep: sleeping moves the clock, nothing waits."""

    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_throttle_halves_on_a_rate_limit_and_widens_again_on_answers() -> None:
    clock = Clock()
    throttle = Throttle(ceiling=8, clock=clock, sleep=clock.sleep)
    with throttle.slot() as first, throttle.slot(), throttle.slot(), throttle.slot():
        first.pause = 2.0  # Coze said 429, Retry-After: 2, with four requests in flight
    assert throttle.window == 2.0
    with throttle.slot():  # a request not yet sent waits out the pause first
        pass
    assert clock.slept == [2.0]
    for _ in range(20):
        with throttle.slot():
            pass
    assert 2.0 < throttle.window <= 8.0


def test_throttle_cuts_once_for_rejections_of_requests_sent_together() -> None:
    clock = Clock()
    throttle = Throttle(ceiling=8, clock=clock, sleep=clock.sleep)
    with throttle.slot() as a, throttle.slot() as b, throttle.slot(), throttle.slot():
        a.pause = b.pause = 1.0
    assert throttle.window == 2.0  # not 1: b was sent before a's cut
    with throttle.slot(hold_back=False) as c:
        c.pause = 1.0
    assert throttle.window == 1.0  # a new round: cut again, never below one


def _voice(voice_id: str) -> dict[str, object]:
    return {
        "voice_id": voice_id,
        "name": f"v{voice_id}",
        "is_system_voice": False,
        "available_training_times": 9,
        "create_time": 1,
        "update_time": 1,
    }


def _serving(pages: dict[int, list[str]], last: int) -> CozeClient:
    """A client whose Coze serves these pages (a hostile or stale list, not the emulator)."""

    def handler(request: httpx.Request) -> httpx.Response:
        number = int(request.url.params["page_num"])
        data = {
            "voice_list": [_voice(i) for i in pages.get(number, [])],
            "has_more": number < last,
        }
        return httpx.Response(200, json={"code": 0, "msg": "", "data": data})

    http = httpx.Client(base_url="http://coze.test", transport=httpx.MockTransport(handler))
    return CozeClient(http, TOKEN, Retry(sleep=Sleeps()))


def test_a_voice_listed_twice_on_one_page_or_the_next_is_read_once() -> None:
    c = _serving({1: ["71", "71", "72"], 2: ["72", "73"]}, last=2)
    assert [v.voice_id for v in c.voices(page_size=3)] == ["71", "72", "73"]


def test_a_page_served_again_further_back_is_an_incomplete_listing() -> None:
    """Pages v0, v1, v0: what page 3 stands in place of was never shown."""
    c = _serving({1: ["70"], 2: ["71"], 3: ["70"], 4: ["72"]}, last=4)
    with pytest.raises(ListingIncomplete, match="voice 70 is on page 1 and again on page 3"):
        list(c.voices(page_size=1))


def test_a_list_of_long_pages_that_never_ends_stops_at_a_count_not_at_memory() -> None:
    """Pages of thousands of voices, each under the size cap, with has_more for ever."""
    pages = {n: [str(7_000_000 + n * 1000 + i) for i in range(1000)] for n in range(1, 50)}
    c = _serving(pages, last=10**6)
    with pytest.raises(ListingIncomplete, match="more than 5,000 voices by page 6"):
        list(c.voices(max_voices=5000))


def test_a_list_too_slow_to_read_stops_at_its_deadline() -> None:
    """Each page in time, but a thousand of them would take hours."""

    def handler(request: httpx.Request) -> httpx.Response:
        time.sleep(0.05)
        number = int(request.url.params["page_num"])
        data = {"voice_list": [_voice(str(70 + number))], "has_more": True}
        return httpx.Response(200, json={"code": 0, "msg": "", "data": data})

    http = httpx.Client(base_url="http://coze.test", transport=httpx.MockTransport(handler))
    c = CozeClient(http, TOKEN, Retry(sleep=Sleeps()))
    with pytest.raises(ListingIncomplete, match=r"not read to its end within 0\.5 s"):
        list(c.voices(page_size=1, seconds=0.5, ahead=1))


@pytest.mark.parametrize(
    "reply",
    [
        pytest.param((500, {"code": 5000, "msg": "busy"}, {}), id="5xx retried"),
        pytest.param((429, {"code": 4020, "msg": "slow"}, {"Retry-After": "0"}), id="429 storm"),
    ],
)
def test_the_listing_deadline_bounds_every_retry_of_a_page(reply: tuple[Any, ...]) -> None:
    """A page retried on 5xx or rate limits, each try slow but in time: the listing's own
    deadline ends them all, not a fresh one per try (6 tries of a 5xx, 40 of a 429)."""
    status, body, headers = reply
    tries = []

    def handler(request: httpx.Request) -> httpx.Response:
        tries.append(request)
        time.sleep(0.5)
        return httpx.Response(status, json=body, headers=headers)

    http = httpx.Client(base_url="http://coze.test", transport=httpx.MockTransport(handler))
    c = CozeClient(http, TOKEN, Retry(sleep=time.sleep, base=0.05))
    with pytest.raises(VoicectlError):
        list(c.voices(seconds=1.0))
    assert len(tries) <= 3


def test_a_reply_past_the_size_cap_is_not_read_and_the_listing_is_incomplete() -> None:
    from voicectl.coze.transport import MAX_REPLY_BYTES

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"{" + b" " * MAX_REPLY_BYTES + b"}")

    http = httpx.Client(base_url="http://coze.test", transport=httpx.MockTransport(handler))
    c = CozeClient(http, TOKEN, Retry(attempts=2, sleep=Sleeps()))
    with pytest.raises(ListingIncomplete, match="larger than 16,777,216 bytes"):
        list(c.voices())


@contextlib.contextmanager
def dripping(head: bytes, gone: list[float] | None = None) -> Iterator[str]:
    """A server that reads a request, sends ``head``, then a byte every 50 ms for ever:
    each byte comes well within any read timeout. When the client lets go of a request,
    the time is appended to ``gone``. With ``head`` None it never reads the request at
    all (an upload then stalls) and only waits for the client to let go."""
    import socket
    import threading

    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.1)  # to see ``stop`` while no client comes
    stop = threading.Event()
    gone = [] if gone is None else gone

    def drip() -> None:
        while not stop.is_set():
            try:
                connection, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with connection:
                if head is None:
                    connection.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                    while not stop.wait(0.05):
                        ready = select.select([connection], [], [], 0)[0]
                        if ready and not connection.recv(1, socket.MSG_PEEK):
                            break
                    gone.append(time.monotonic())
                    continue
                connection.settimeout(0.2)
                with contextlib.suppress(OSError):
                    while connection.recv(65536):  # the request, until the client waits
                        pass
                try:
                    connection.sendall(head)
                    while not stop.is_set():
                        connection.sendall(b"X" if head else b" ")
                        time.sleep(0.05)
                except OSError:
                    gone.append(time.monotonic())

    thread = threading.Thread(target=drip, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}"
    finally:
        stop.set()
        server.close()
        thread.join(timeout=5)


DRIPS = {
    "body": (b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n", "the reply took longer"),
    "head": (b"HTTP/1.1 200 OK\r\nX-Slow: ", "no reply within"),
}


@pytest.mark.parametrize("part", DRIPS)
def test_a_reply_that_drips_is_given_up_on_and_a_clone_is_of_unknown_outcome(
    take: Path, part: str
) -> None:
    """A reply's head or body dripped under any read timeout meets the request's overall
    deadline: the clone's outcome is unknown (to reconcile), the listing incomplete."""
    head, message = DRIPS[part]
    with dripping(head) as base:
        c = CozeClient(
            http_client(base), TOKEN, Retry(attempts=2, sleep=Sleeps()), deadlines=(0.5, 0.5)
        )
        started = time.monotonic()
        with pytest.raises(OutcomeUnknown, match=rf"{message}.* 0\.5 s"):
            clone(c, take)
        with pytest.raises(ListingIncomplete, match=rf"{message}.* 0\.5 s"):
            list(c.voices())
        assert time.monotonic() - started < 60  # not held for ever: given up at 0.5 s


@pytest.mark.parametrize("part", DRIPS)
def test_a_request_given_up_on_is_abandoned_on_the_wire(take: Path, part: str) -> None:
    """At the deadline the connection is closed, so the server sees the request let go
    of, rather than a client that keeps it open while it waits for nothing."""
    gone: list[float] = []
    with dripping(DRIPS[part][0], gone) as base:
        c = CozeClient(
            http_client(base), TOKEN, Retry(attempts=1, sleep=Sleeps()), deadlines=(0.5, 0.5)
        )
        with pytest.raises(OutcomeUnknown):
            clone(c, take)
        for _ in range(400):  # the server notices at once; a loaded machine may lag
            if gone:
                break
            time.sleep(0.05)
        assert gone


def test_an_upload_the_server_does_not_read_meets_the_deadline(tmp_path: Path) -> None:
    """A server that never reads the take holds the upload in its socket buffers: each
    write waits, and all of them together end by the deadline."""
    big = tmp_path / "big.wav"  # more than loopback's socket buffers hold; never parsed
    big.write_bytes(bytes(9_500_000))
    gone: list[float] = []
    with dripping(None, gone) as base:
        c = CozeClient(
            http_client(base), TOKEN, Retry(attempts=1, sleep=Sleeps()), deadlines=(0.5, 0.5)
        )
        started = time.monotonic()
        with pytest.raises(OutcomeUnknown, match=r"the upload did not finish within 0\.5 s"):
            clone(c, big)
        assert time.monotonic() - started < 60  # not held for ever: given up at 0.5 s


# -- the wait budget -------------------------------------------------------------------------


def test_overlapping_waits_count_once_and_each_is_announced_with_the_budget() -> None:
    clock, said = Clock(), []
    budget = WaitBudget(10, announce=said.append, clock=clock, sleep=lambda _: None)
    budget(4)  # [100, 104)
    budget(4)  # another thread held back by the same rate limit: [100, 104) again
    clock.now = 102
    budget(3)  # [102, 105): one more second
    assert budget.spent == 5
    assert said == [
        "waiting 4.0 s before the next request to Coze "
        "(4.0 s of the 10 s wait budget, this wait included)",
        "waiting 3.0 s before the next request to Coze "
        "(5.0 s of the 10 s wait budget, this wait included)",
    ]
    budget(0.5)  # (a short wait passes without a word)
    assert len(said) == 2


def test_a_wait_past_the_budget_is_refused_without_sleeping() -> None:
    clock = Clock()
    budget = WaitBudget(10, clock=clock, sleep=clock.sleep)
    budget(8)
    with pytest.raises(WaitBudgetSpent, match="would pass the 10 s wait budget"):
        budget(3)
    assert clock.now == 108 and budget.spent == 8
    budget(2)  # what is left can still be waited


@pytest.mark.parametrize("header", ["1e8", "inf", "nan", "-5", "Wed, 21 Oct 2015 07:28:00 GMT"])
def test_a_retry_after_that_is_not_a_sane_number_of_seconds_is_not_honoured(
    base: str, take: Path, header: str
) -> None:
    """At most a minute per wait, a backoff's length for anything not a finite number."""
    sleeps = Sleeps()
    faults(base, fail={"code": 4020, "http_status": 429, "count": 2, "retry_after": header})
    clone(client(base, sleeps=sleeps), take)
    assert len(sleeps) == 2 and all(0 < s <= 60 * 1.25 for s in sleeps), sleeps


def test_a_rate_limit_past_the_wait_budget_stops_the_clone_unsent(base: str, take: Path) -> None:
    """Coze asking for a minute again and again: the client gives up within its budget,
    and what it gave up on was never carried out (the ledger shows no clone)."""
    clock = Clock()
    budget = WaitBudget(100, clock=clock, sleep=clock.sleep)
    faults(base, fail={"code": 4020, "http_status": 429, "count": 40, "retry_after": "60"})
    c = CozeClient(http_client(base), TOKEN, Retry(sleep=budget))
    with pytest.raises(WaitBudgetSpent):
        clone(c, take)
    assert 60 <= budget.spent <= 100
    assert httpx.get(f"{base}/_emulator/ledger").json()["clones"] == []


@pytest.mark.parametrize(
    "proxy", ["socks5://user:hunter2@127.0.0.1:1", "ftp://127.0.0.1:1", "http://[::1"]
)
def test_a_proxy_from_the_environment_that_httpx_cannot_use_is_one_clear_error(
    monkeypatch: pytest.MonkeyPatch, proxy: str
) -> None:
    """A typo in ALL_PROXY is the operator's, not a bug; its password is never shown."""
    monkeypatch.setenv("ALL_PROXY", proxy)
    with pytest.raises(VoicectlError, match="cannot use the proxy set in the environment") as e:
        http_client("https://api.coze.cn")
    assert "hunter2" not in str(e.value)


def test_a_list_request_to_a_base_with_a_path_is_hinted_as_a_wrong_base(base: str) -> None:
    """Not "Coze does not know this voice id": no voice id was sent, the base is wrong."""
    with pytest.raises(ListingIncomplete) as caught:
        list(client(base + "/coze").voices())
    message = str(caught.value)
    assert "API base" in message and "with no path" in message
    assert "voice id" not in message
