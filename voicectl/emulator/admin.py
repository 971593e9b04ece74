"""An emulator seen from outside: its admin endpoints and its voice list, over loopback.

Shipped with the emulator, as structlog ships its testing helpers, for everything that
drives one: the test suite, the fault campaign and the benchmarks. It speaks HTTP only,
so it drives an emulator in another process as well as one in a thread.
"""

from __future__ import annotations

import time
from typing import Any

import httpx


class Admin:
    """The emulator at ``base``: what it committed, its voices, its faults."""

    def __init__(self, base: str, token: str, timeout: float = 30.0) -> None:
        self.base, self.token = base, token
        self.http = httpx.Client(base_url=base, timeout=timeout)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Admin:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def env(self) -> dict[str, str]:
        """What points voicectl at this emulator."""
        return {"COZE_API_BASE": self.base, "COZE_API_TOKEN": self.token}

    def ledger(self) -> list[dict[str, Any]]:
        """Every clone committed, in order."""
        clones: list[dict[str, Any]] = self.http.get("/_emulator/ledger").json()["clones"]
        return clones

    def faults(self, **settings: Any) -> dict[str, Any]:
        """Set faults (see :mod:`voicectl.emulator.faults`); the settings after."""
        reply = self.http.post("/_emulator/faults", json=settings)
        reply.raise_for_status()
        now: dict[str, Any] = reply.json()
        return now

    def clear_faults(self) -> None:
        """Every fault off, voices kept."""
        current: dict[str, Any] = self.http.get("/_emulator/faults").json()
        self.faults(**dict.fromkeys(current))

    def reset(self) -> None:
        """Every voice, the ledger and every fault wiped."""
        self.http.post("/_emulator/reset").raise_for_status()

    def settle(self, limit: float = 15.0) -> None:
        """Wait until no request is being handled: a killed client's clone may still run."""
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            if not any(self.http.get("/_emulator/activity").json()["in_flight"].values()):
                return
            time.sleep(0.01)

    def requests(self) -> dict[str, int]:
        """The requests received by endpoint (clone, list, speech, preview) since the
        start or the last reset; ``preview_with_token``: previews fetched with a token."""
        counts: dict[str, int] = self.http.get("/_emulator/activity").json()["requests"]
        return counts

    def voices(self) -> dict[str, dict[str, Any]]:
        """The account's cloned voices by id, the whole list read through ``has_more``."""
        found: dict[str, dict[str, Any]] = {}
        for page in range(1, 10_000):
            body = self.http.get(
                "/v1/audio/voices",
                headers={"Authorization": f"Bearer {self.token}"},
                params={
                    "voice_state": "all",
                    "page_num": page,
                    "page_size": 100,
                    "filter_system_voice": "true",
                },
            ).json()
            found.update({v["voice_id"]: v for v in body["data"]["voice_list"]})
            if not body["data"]["has_more"]:
                break
        return found
