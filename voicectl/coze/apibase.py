"""Coze's API base URL: one rule for voicectl.yaml's ``api_base`` and ``COZE_API_BASE``.

Pure and import-light (no httpx), so reading the config does not pay for the client.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

CN_BASE = "https://api.coze.cn"
COM_BASE = "https://api.coze.com"


def problem(base: str) -> str | None:
    """Why ``base`` cannot be Coze's API base, as a phrase following the base; or None.

    https, or plain http only to a loopback host (the emulator); no credentials, query or
    fragment, where a secret could hide.
    """
    if "://" not in base:
        return (
            f"has no scheme: write it as https://HOST (e.g. {CN_BASE}), or "
            "http://127.0.0.1:PORT for a local emulator"
        )
    try:
        parts = urlsplit(base)
        host = parts.hostname
        port_ok = parts.port is None or 0 < parts.port < 65536
    except ValueError:
        return f"is not a valid URL, e.g. {CN_BASE}"
    if parts.scheme not in ("http", "https") or not host or not port_ok:
        return f"is not an http(s) URL, e.g. {CN_BASE}"
    if parts.username is not None or parts.password is not None:
        return "carries credentials; put the token in COZE_API_TOKEN"
    if parts.query or parts.fragment:
        return (
            f"carries a query or fragment; give only the base, e.g. {CN_BASE} "
            "(and the token in COZE_API_TOKEN)"
        )
    if parts.path.rstrip("/").endswith("/v1") or "/v1/" in parts.path:
        return (
            "names an API path (/v1): give only the base, e.g. "
            f"{CN_BASE} or http://127.0.0.1:8787; voicectl adds /v1/audio/... itself"
        )
    if parts.scheme == "http" and not loopback(host):
        return (
            "uses plain http to a host that is not loopback: plain http is only allowed to "
            "a loopback host (127.0.0.1, ::1, localhost); use https"
        )
    return None


def repository_problem(base: str) -> str | None:
    """Why voicectl.yaml's ``api_base`` cannot be used, or None. A pull request can change
    the repository, so it may only choose between Coze's two sites: any other base (an
    emulator, a gateway) would receive the token, and only the operator chooses that."""
    if base.rstrip("/") in (CN_BASE, COM_BASE):
        return None
    return problem(base) or (
        f"is not one of Coze's two sites ({CN_BASE}, {COM_BASE}): the repository, which a "
        "pull request can change, may choose only between them; another base (an "
        "emulator, a gateway) is the operator's choice: set COZE_API_BASE"
    )


def shown(base: str) -> str:
    """``base`` as safe to print: scheme, host and path, never user info or query."""
    try:
        parts = urlsplit(base)
        host, _ = parts.hostname, parts.port
    except ValueError:  # not a URL: show none of it
        return "(not a URL)"
    if "://" not in base:  # no scheme: "127.0.0.1:8917" reads as a scheme and a path
        return ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host or ''}{port}{parts.path}"


def loopback(host: str) -> bool:
    """Whether ``host`` is this machine (where the emulator runs)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
