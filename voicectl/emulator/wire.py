"""What the emulator's replies look like on the wire: logids, the envelope, fault replies.

Every JSON reply of the Coze API is the envelope ``{code, msg, data?, detail: {logid}}``
with the same logid in the ``X-Tt-Logid`` header (contract sections 2 and 9.3).
"""

from __future__ import annotations

import secrets
from datetime import datetime, timezone
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from voicectl.emulator.faults import DEFAULT_FAULT_CONTENT_TYPE, FailRule
from voicectl.emulator.store import ApiError


def new_logid() -> str:
    """YYYYMMDDhhmmss (UTC) and 20 uppercase hex digits, like Coze's logids."""
    return f"{datetime.now(timezone.utc):%Y%m%d%H%M%S}{secrets.token_hex(10).upper()}"


def envelope(
    logid: str, code: int = 0, msg: str = "", data: object = None, status: int = 200, retry: int = 1
) -> JSONResponse:
    """Coze's JSON envelope; always both code and msg, or cozepy would not raise."""
    body: dict[str, object] = {"code": code, "msg": msg}
    if data is not None:
        body["data"] = data
    body["detail"] = {"logid": logid}
    headers = {"X-Tt-Logid": logid, **({"Retry-After": str(retry)} if status == 429 else {})}
    return JSONResponse(body, status, headers=headers)


def fault_reply(rule: FailRule, logid: str) -> Response:
    """An injected reply: the envelope, or exactly the rule's body (not a Coze envelope)."""
    if rule.body is None:
        reply: Response = envelope(logid, rule.code, rule.msg, status=rule.http_status)
        reply.headers.update(rule.headers)
        return reply
    reply = Response(rule.body.encode("utf-8"), rule.http_status, headers=rule.headers)
    # Set as given, without Starlette's charset handling: a gateway's page is sent verbatim.
    reply.headers["content-type"] = rule.content_type or DEFAULT_FAULT_CONTENT_TYPE
    return reply


def plain(body: dict[str, object]) -> JSONResponse:
    """An admin reply: plain JSON, no envelope."""
    return JSONResponse(body, headers={"X-Tt-Logid": new_logid()})


async def json_body(request: Request, status: int = 200) -> Any:
    try:
        return await request.json()
    except ValueError as exc:
        raise ApiError(4000, "The request body must be JSON.", status) from exc
