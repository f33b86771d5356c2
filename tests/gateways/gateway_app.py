"""The example app (`examples/fastapi-docs`) as the gateways' upstream, with two additions. Every
request that reaches it is appended to a JSON-lines file (`GATEWAY_APP_LOG`), with the path it
was asked for, the test's request id (`X-Test-Request-Id`) and the `X-Warden-*` /
`X-Decision-Id` headers the gateway set, whether an `Authorization` header came along, and
whether an `X-Warden-Context` did (with a short hash of it, never the token: the tests tell by
the hash whose token it was). The tests read it to tell whether a request got past the
gateway, and what the gateway told it. And each answer carries `X-Test-Decisions`: the
decisions the app's own checks took (`warden.fastapi.decisions_of`), as `id;policy_revision`
pairs, comma-separated, so a test sees which check the gateway's context token stood in for.

Run: `uvicorn --factory gateway_app:create` with `examples/fastapi-docs` on `PYTHONPATH`,
`WARDEN_URL`, `DOCS_DATABASE_URL` and `GATEWAY_APP_LOG` in the environment.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path

from fastapi import FastAPI, Request, Response
from warden.fastapi import decisions_of

from docs_app.main import create_app

CONTEXT_HEADER = "x-warden-context"
RECORDED_HEADERS = (
    "x-test-request-id",
    "x-warden-principal",
    "x-warden-principal-type",
    "x-warden-tenant",
    "x-decision-id",
)


def context_fingerprint(token: str) -> str:
    """Who sent a context token, without logging it: the first 16 hex digits of its SHA-256."""
    return hashlib.sha256(token.encode()).hexdigest()[:16]


def create() -> FastAPI:
    app = create_app()
    # Line-buffered: each request is in the file before the app answers it.
    log = Path(os.environ["GATEWAY_APP_LOG"]).open("a", buffering=1)  # noqa: SIM115 - app-long
    lock = threading.Lock()

    @app.middleware("http")
    async def record(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        raw_path = request.scope.get("raw_path", b"").decode("latin-1")
        line = {
            "method": request.method,
            "path": request.url.path,
            "raw_path": raw_path,
            "headers": {
                name: request.headers[name] for name in RECORDED_HEADERS if name in request.headers
            },
            "authorization": "authorization" in request.headers,
            "context_tokens": [
                context_fingerprint(value) for value in request.headers.getlist(CONTEXT_HEADER)
            ],
        }
        with lock:
            log.write(json.dumps(line) + "\n")
        response = await call_next(request)
        response.headers["X-Test-Decisions"] = ",".join(
            f"{decision.decision_id};{decision.policy_revision}"
            for decision in decisions_of(request)
        )
        return response

    return app
