"""How much latency the SDK adds per request: the same handler, unprotected and protected.

Starts the real `warden serve` (as the tests do) and uvicorn on loopback, then times
sequential requests (bounded: --requests each, after --warmup) of

- `GET /open/{id}`:    a trivial handler with no dependency;
- `GET /guarded/{id}`: the same handler behind `warden.authorize("read", "Document", ...)`;
- `GET /tenants/acme/documents/roadmap`: the example app's read (SQLite load + check);
- `POST /v1/check` sent straight to Warden from the benchmark (what the SDK waits for).

Run from examples/fastapi-docs with the SDK's venv:
    python bench_overhead.py --requests 2000
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx2
from fastapi import Depends, FastAPI

from tests.warden_server import free_port, start_warden
from warden import AsyncWardenClient
from warden.fastapi import Authorized, Warden


def bench_app() -> FastAPI:
    """The benchmark's own app (uvicorn --factory): two routes, one handler."""
    warden = Warden(AsyncWardenClient(os.environ["WARDEN_URL"]))
    app = FastAPI()
    warden.install(app)
    guard = warden.authorize("read", "Document", id_template="acme/{doc_id}")

    @app.get("/open/{doc_id}")
    async def open_route(doc_id: str) -> dict[str, str]:
        return {"id": doc_id}

    @app.get("/guarded/{doc_id}")
    async def guarded_route(doc_id: str, auth: Authorized[Any] = Depends(guard)) -> dict[str, str]:  # noqa: B008
        return {"id": doc_id}

    return app


def example_app() -> FastAPI:
    from docs_app.main import create_app

    return create_app(os.environ["WARDEN_URL"], os.environ["DOCS_DATABASE_URL"])


def serve(factory: str, env: dict[str, str], log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    with log.open("wb") as out:
        process = subprocess.Popen(  # noqa: S603 - our interpreter, fixed arguments
            [
                sys.executable,
                "-m",
                "uvicorn",
                "--factory",
                factory,
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--log-level",
                "warning",
                "--no-access-log",
            ],
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=Path(__file__).parent,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"uvicorn exited:\n{log.read_text()}")
        try:
            httpx2.get(f"{url}/openapi.json", timeout=1.0)
            return process, url
        except httpx2.TransportError:
            time.sleep(0.1)
    process.kill()
    raise TimeoutError("uvicorn did not start")


def timed(
    client: httpx2.Client, method: str, url: str, n: int, warmup: int, **kwargs: Any
) -> list[float]:
    for _ in range(warmup):
        client.request(method, url, **kwargs).raise_for_status()
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        response = client.request(method, url, **kwargs)
        samples.append(time.perf_counter() - start)
        response.raise_for_status()
    return samples


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=200)
    args = parser.parse_args()
    n = min(args.requests, 20000)

    workdir = Path(tempfile.mkdtemp(prefix="warden-bench-"))
    warden = start_warden(workdir)
    env = {"WARDEN_URL": warden.url, "DOCS_DATABASE_URL": f"sqlite:///{workdir / 'docs.db'}"}
    processes = []
    try:
        bench, bench_url = serve("bench_overhead:bench_app", env, workdir / "bench.log")
        processes.append(bench)
        example, example_url = serve("bench_overhead:example_app", env, workdir / "example.log")
        processes.append(example)
        token = warden.mint("carol", "acme", expires_in=3600)
        auth = {"Authorization": f"Bearer {token}"}
        check_body = {"action": "read", "resource": {"type": "Document", "id": "acme/roadmap"}}
        rows = []
        with httpx2.Client(timeout=5.0) as client:
            rows.append(
                (
                    "unprotected route GET /open/{id}",
                    timed(client, "GET", f"{bench_url}/open/roadmap", n, args.warmup),
                )
            )
            rows.append(
                (
                    "protected route GET /guarded/{id}",
                    timed(
                        client, "GET", f"{bench_url}/guarded/roadmap", n, args.warmup, headers=auth
                    ),
                )
            )
            rows.append(
                (
                    "example read GET /tenants/acme/documents/roadmap",
                    timed(
                        client,
                        "GET",
                        f"{example_url}/tenants/acme/documents/roadmap",
                        n,
                        args.warmup,
                        headers=auth,
                    ),
                )
            )
            rows.append(
                (
                    "Warden alone POST /v1/check",
                    timed(
                        client,
                        "POST",
                        f"{warden.url}/v1/check",
                        n,
                        args.warmup,
                        headers=auth,
                        json=check_body,
                    ),
                )
            )
        print(f"{n} sequential requests each on loopback, after {args.warmup} warm-up")
        print(f"| {'what':<52} | p50 ms | p99 ms | mean ms |")
        print(f"|{'-' * 54}|--------|--------|---------|")
        for name, samples in rows:
            print(
                f"| {name:<52} | {percentile(samples, 0.50):6.2f} | "
                f"{percentile(samples, 0.99):6.2f} | {statistics.fmean(samples) * 1000:7.2f} |"
            )
        open_p50, guarded_p50 = percentile(rows[0][1], 0.5), percentile(rows[1][1], 0.5)
        open_p99, guarded_p99 = percentile(rows[0][1], 0.99), percentile(rows[1][1], 0.99)
        print(
            f"SDK overhead (protected - unprotected): p50 {guarded_p50 - open_p50:.2f} ms, "
            f"p99 {guarded_p99 - open_p99:.2f} ms"
        )
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=10)
        warden.stop()


if __name__ == "__main__":
    main()
