"""The example app (`examples/fastapi-docs`) as the gateways' upstream, with one addition: every
request that reaches it is appended to a JSON-lines file (`GATEWAY_APP_LOG`), with the path it
was asked for, the test's request id (`X-Test-Request-Id`) and the `X-Warden-*` /
`X-Decision-Id` headers the gateway set, and whether an `Authorization` header came along. The
tests read it to tell whether a request got past the gateway, and what the gateway told it.

Run: `uvicorn --factory gateway_app:create` with `examples/fastapi-docs` on `PYTHONPATH`,
`WARDEN_URL`, `DOCS_DATABASE_URL` and `GATEWAY_APP_LOG` in the environment.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path

from fastapi import FastAPI, Request, Response

from docs_app.main import create_app

RECORDED_HEADERS = (
    "x-test-request-id",
    "x-warden-principal",
    "x-warden-principal-type",
    "x-warden-tenant",
    "x-decision-id",
)


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
        }
        with lock:
            log.write(json.dumps(line) + "\n")
        return await call_next(request)

    return app
