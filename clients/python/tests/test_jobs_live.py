"""Background jobs act for the user (issue #25), end to end: the real `warden serve`
(`live_warden.py`, with RFC 8693 token exchange), a real FastAPI app whose request enqueues a
job, a real Celery worker (a process of its own, `jobs_live_worker.py`), a real arq worker
(`burst=True`) and an asyncio task, on a Redis server of their own on 127.0.0.1.

Each scenario enqueues first and runs the jobs afterwards (the Celery worker is started, the
arq worker run, the asyncio tasks released), so whatever happens in between (a revocation, a
disabled user or account) is what the job's check meets. What is asserted:

- a job is allowed exactly what its user is: the same allows and denies, with the same reasons,
  as the user's own checks, decided for the user's principal (another tenant's resource is a
  deny), and the decision log names the user as `principal` and the service account in
  `actors`;
- revoking the user, disabling the user or disabling the account between enqueue and run
  makes the job's check not allowed (a 401 or a deny: either is "not allowed");
- an exchange cannot widen the scopes or switch the tenant, and Warden's RFC 8693 errors reach
  the SDK as `TokenRequestError` with their OAuth code;
- the user's own token is never in the broker, and no worker log shows a token.

Needs `redis-server` (bash scripts/test-python.sh installs it under CI); without it the tests
skip, except under `CI=true`, where they fail. Every wait is bounded and every process this
module starts is stopped in teardown, by its id.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import json
import logging
import os
import secrets
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import jobs_live_worker
import jwt
import pytest
import redis
from arq import create_pool
from arq.connections import ArqRedis, RedisSettings
from arq.jobs import Job
from arq.worker import Worker, func
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import Depends, FastAPI, Request
from fastapi.testclient import TestClient
from live_warden import IDP_AUDIENCE, IDP_ISSUER, IDP_KID, LiveWarden, free_port, start_warden
from pydantic import BaseModel

from warden import (
    AsyncTokenExchanger,
    AsyncWardenClient,
    InvalidTokenError,
    JobDeniedError,
    JobIdentity,
    TokenExchanger,
    TokenRequestError,
    WardenClient,
    authorize_job,
    authorize_job_async,
)
from warden.fastapi import Authorized, Warden
from warden.jobs import JWT_TOKEN_TYPE, enqueue_arq, enqueue_celery, spawn

# arq's Worker.close calls redis-py's deprecated close(); not this module's doing.
pytestmark = pytest.mark.filterwarnings("ignore:Call to deprecated close:DeprecationWarning")

TESTS_DIR = Path(__file__).resolve().parent
EXCHANGE_AUDIENCE = "reports-app"
"""An extra audience `[tokens] exchange_audiences` allows."""
DEFAULT_AUDIENCE = "warden"
"""`[tokens] audience`, Warden's default: always allowed."""
USER_SCOPE = "documents:read"
ID_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:id_token"  # noqa: S105 - a URN Warden refuses
WORKER_SCOPES = ["warden:token-exchange", "documents:read", "documents:write"]
REDIS_READY_SECONDS = 10.0
RESULT_TIMEOUT_SECONDS = 60.0
WORKER_STOP_SECONDS = 15.0
QUEUES = ("celery", "arq", "asyncio")
Queue = Literal["celery", "arq", "asyncio"]
Check = tuple[str, str]  # (action, document id)


def redis_server_binary() -> str:
    found = shutil.which("redis-server") or (
        "/usr/bin/redis-server" if os.access("/usr/bin/redis-server", os.X_OK) else None
    )
    if found is None:
        message = (
            "`redis-server` is not installed: the Celery and arq tests need one "
            "(apt-get install redis-server; bash scripts/test-python.sh does it under CI)"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return found


def stop(process: subprocess.Popen[bytes]) -> None:
    """End a process this module started, by its id: terminate, then kill (bounded)."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=WORKER_STOP_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=WORKER_STOP_SECONDS)


def start_redis(workdir: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    log = (workdir / "redis.log").open("wb")
    process = subprocess.Popen(  # noqa: S603 - redis-server, fixed arguments
        [
            redis_server_binary(),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    log.close()
    probe = redis.Redis(host="127.0.0.1", port=port, socket_timeout=1.0)
    deadline = time.monotonic() + REDIS_READY_SECONDS
    try:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"redis-server exited: {(workdir / 'redis.log').read_text()}")
            try:
                if probe.ping():
                    return process, port
            except redis.ConnectionError:
                time.sleep(0.05)
    finally:
        probe.close()
    stop(process)
    raise TimeoutError(f"redis-server not ready in {REDIS_READY_SECONDS} s")


# -- the application -----------------------------------------------------------------------------


class JobRequest(BaseModel):
    queue: Queue
    action: str
    resource_id: str


@dataclass
class Gate:
    """Holds the asyncio jobs between enqueue and run: they wait until it opens."""

    event: threading.Event = field(default_factory=threading.Event)
    results: dict[str, concurrent.futures.Future[dict[str, Any]]] = field(default_factory=dict)


async def asyncio_job(
    client: AsyncWardenClient,
    gate: Gate,
    action: str,
    resource_id: str,
    result: concurrent.futures.Future[dict[str, Any]],
) -> None:
    """The asyncio job: wait for the gate, then check as the job's user (`spawn` set it)."""
    try:
        if not await asyncio.to_thread(gate.event.wait, RESULT_TIMEOUT_SECONDS):
            raise TimeoutError("the gate never opened")
        try:
            decision = await authorize_job_async(client, action, "Document", resource_id)
            result.set_result(jobs_live_worker.outcome(decision, None))
        except JobDeniedError as denied:
            result.set_result(jobs_live_worker.outcome(None, denied))
    except BaseException as failure:
        result.set_exception(failure)


def build_app(
    warden_url: str, worker_account: dict[str, Any], redis_port: int, gate: Gate
) -> FastAPI:
    """The application: `POST /tenants/{tenant}/jobs` lets a user who may list the tenant
    enqueue a check of one action on one document, as themselves, on one of three queues."""
    warden = Warden()

    async def lifespan(app: FastAPI) -> Any:
        async with (
            AsyncWardenClient(warden_url, timeout=10.0) as client,
            AsyncTokenExchanger(
                warden_url,
                client_id=worker_account["client_id"],
                client_secret=worker_account["client_secret"],
                timeout=10.0,
            ) as exchanger,
        ):
            warden.bind(client)
            app.state.exchanger = exchanger
            app.state.arq = await create_pool(
                RedisSettings(host="127.0.0.1", port=redis_port, database=2)
            )
            try:
                yield
            finally:
                await app.state.arq.aclose()

    app = FastAPI(lifespan=lifespan)
    warden.install(app)
    job_identity = warden.job_identity(
        lambda request: request.app.state.exchanger, scope=USER_SCOPE
    )

    @app.post("/tenants/{tenant}/jobs")
    async def enqueue(
        request: Request,
        body: JobRequest,
        auth: Authorized[Any] = Depends(warden.authorize("list", "Tenant", id_param="tenant")),  # noqa: B008
        job: JobIdentity = Depends(job_identity),  # noqa: B008
    ) -> dict[str, str]:
        if body.queue == "celery":
            sent = enqueue_celery(
                jobs_live_worker.check_document, job, args=(body.action, body.resource_id)
            )
            return {"id": sent.id}
        if body.queue == "arq":
            queued = await enqueue_arq(
                request.app.state.arq,
                jobs_live_worker.ARQ_FUNCTION,
                job,
                body.action,
                body.resource_id,
            )
            assert queued is not None
            return {"id": queued.job_id}
        job_id = uuid.uuid4().hex
        result: concurrent.futures.Future[dict[str, Any]] = concurrent.futures.Future()
        gate.results[job_id] = result
        spawn(asyncio_job(warden.client, gate, body.action, body.resource_id, result), job)
        return {"id": job_id}

    return app


# -- the stack -----------------------------------------------------------------------------------


@dataclass
class Stack:
    warden: LiveWarden
    workdir: Path
    redis_port: int
    worker_account: dict[str, Any]
    http: TestClient
    gate: Gate
    worker_logs: list[Path] = field(default_factory=list)

    @property
    def broker(self) -> str:
        return f"redis://127.0.0.1:{self.redis_port}/0"

    @property
    def worker_principal(self) -> dict[str, Any]:
        return {
            "type": "ServiceAccount",
            "id": f"acme/{self.worker_account['client_id']}",
            "tenant": "acme",
        }

    def exchanger(self, account: dict[str, Any] | None = None, **options: Any) -> TokenExchanger:
        chosen = account or self.worker_account
        return TokenExchanger(
            self.warden.url,
            client_id=chosen["client_id"],
            client_secret=chosen["client_secret"],
            timeout=10.0,
            **options,
        )

    def direct(self, token: str, checks: list[Check]) -> dict[Check, tuple[bool, str]]:
        """The user's own checks, with their bearer token."""
        with WardenClient(self.warden.url, timeout=10.0) as client:
            answers = {}
            for action, resource_id in checks:
                decision = client.check(token, action, "Document", resource_id)
                answers[(action, resource_id)] = (decision.allowed, decision.reason)
            return answers

    def enqueue(self, token: str, checks: list[Check]) -> list[tuple[Queue, Check, str]]:
        """Through the app: one job per queue and check, as the token's user."""
        enqueued: list[tuple[Queue, Check, str]] = []
        self.gate.event.clear()
        for queue in QUEUES:
            for action, resource_id in checks:
                answer = self.http.post(
                    "/tenants/acme/jobs",
                    json={"queue": queue, "action": action, "resource_id": resource_id},
                    headers={"Authorization": f"Bearer {token}"},
                )
                assert answer.status_code == 200, answer.text
                enqueued.append((queue, (action, resource_id), answer.json()["id"]))
        return enqueued

    def run(self, enqueued: list[tuple[Queue, Check, str]]) -> dict[tuple[Queue, Check], Any]:
        """Run every enqueued job now: release the asyncio ones, run an arq worker in burst
        mode, start a Celery worker until its results are in. Each job's outcome."""
        outcomes: dict[tuple[Queue, Check], Any] = {}
        self.gate.event.set()
        for queue, check, job_id in enqueued:
            if queue == "asyncio":
                outcomes[(queue, check)] = self.gate.results.pop(job_id).result(
                    timeout=RESULT_TIMEOUT_SECONDS
                )
        arq_jobs = [(check, job_id) for queue, check, job_id in enqueued if queue == "arq"]
        for (check, _), result in zip(arq_jobs, asyncio.run(self.run_arq(arq_jobs)), strict=True):
            outcomes[("arq", check)] = result
        celery_jobs = [(check, job_id) for queue, check, job_id in enqueued if queue == "celery"]
        for (check, _), result in zip(celery_jobs, self.run_celery(celery_jobs), strict=True):
            outcomes[("celery", check)] = result
        return outcomes

    async def run_arq(self, jobs: list[tuple[Check, str]]) -> list[Any]:
        settings = RedisSettings(host="127.0.0.1", port=self.redis_port, database=2)
        pool: ArqRedis = await create_pool(settings)
        worker = Worker(
            functions=[
                func(jobs_live_worker.check_document_arq, name=jobs_live_worker.ARQ_FUNCTION)
            ],
            redis_pool=pool,
            burst=True,
            handle_signals=False,
            poll_delay=0.05,
            max_tries=1,
            ctx={"warden_url": self.warden.url},
        )
        try:
            await asyncio.wait_for(worker.async_run(), RESULT_TIMEOUT_SECONDS)
            return [await Job(job_id, pool).result(timeout=5) for _, job_id in jobs]
        finally:
            await worker.close()
            await pool.aclose()

    def run_celery(self, jobs: list[tuple[Check, str]]) -> list[Any]:
        log_path = self.workdir / f"celery-worker-{len(self.worker_logs)}.log"
        self.worker_logs.append(log_path)
        env = {
            **os.environ,
            "JOBS_LIVE_BROKER": self.broker,
            "JOBS_LIVE_WARDEN_URL": self.warden.url,
        }
        with log_path.open("wb") as log:
            process = subprocess.Popen(  # noqa: S603 - this venv's celery, fixed arguments
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "jobs_live_worker:celery_app",
                    "worker",
                    "--pool",
                    "solo",
                    "--concurrency",
                    "1",
                    "--loglevel",
                    "INFO",
                    "--without-heartbeat",
                    "--without-mingle",
                    "--without-gossip",
                    "--queues",
                    jobs_live_worker.CELERY_QUEUE,
                    "--hostname",
                    f"jobs-live-{secrets.token_hex(3)}@localhost",
                ],
                cwd=TESTS_DIR,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        try:
            app = jobs_live_worker.celery_app
            return [
                app.AsyncResult(task_id).get(timeout=RESULT_TIMEOUT_SECONDS) for _, task_id in jobs
            ]
        finally:
            stop(process)

    def broker_contents(self) -> bytes:
        """Every value in the Redis server (queues, jobs, results), concatenated."""
        contents = b""
        for database in (0, 2):
            client = redis.Redis(host="127.0.0.1", port=self.redis_port, db=database)
            try:
                for key in client.scan_iter(count=1000):
                    kind = client.type(key)
                    if kind == b"string":
                        contents += client.get(key) or b""
                    elif kind == b"list":
                        contents += b"".join(client.lrange(key, 0, -1))
                    elif kind == b"zset":
                        contents += b"".join(client.zrange(key, 0, -1))
                    elif kind == b"hash":
                        contents += b"".join(client.hgetall(key).values())
                    elif kind == b"set":
                        contents += b"".join(client.smembers(key))
            finally:
                client.close()
        return contents


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    workdir = tmp_path_factory.mktemp("warden-jobs")
    redis_process, redis_port = start_redis(workdir)
    try:
        server = start_warden(
            workdir, context_ttl_seconds=30, exchange_audiences=[EXCHANGE_AUDIENCE]
        )
        try:
            account = server.create_service_account("acme", "alice", WORKER_SCOPES)
            broker = f"redis://127.0.0.1:{redis_port}/0"
            jobs_live_worker.celery_app.conf.update(broker_url=broker, result_backend=broker)
            gate = Gate()
            app = build_app(server.url, account, redis_port, gate)
            with TestClient(app) as http:
                try:
                    yield Stack(server, workdir, redis_port, account, http, gate)
                finally:
                    gate.event.set()  # asyncio jobs a failed test left waiting end now
        finally:
            server.stop()
    finally:
        stop(redis_process)


def claims_of(token: str) -> dict[str, Any]:
    body = token.split(".")[1]
    claims: dict[str, Any] = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    return claims


def record_of(stack: Stack, decision_id: str) -> dict[str, Any]:
    found = [record for record in stack.warden.decisions() if record.get("id") == decision_id]
    assert len(found) == 1, f"decision {decision_id} not in the log"
    return found[0]


# -- the scenarios -------------------------------------------------------------------------------


CAROL_CHECKS: list[Check] = [
    ("read", "acme/roadmap"),  # a viewer reads her tenant's documents
    ("edit", "acme/roadmap"),  # but does not edit them
    ("read", "acme/salaries"),  # nor read restricted ones
    ("read", "globex/roadmap"),  # nor another tenant's
    ("read", "public/handbook"),  # the public tenant's are for every user
]


def test_a_job_is_allowed_exactly_what_its_user_is(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    token = stack.warden.mint("carol", "acme", scope=USER_SCOPE)
    direct = stack.direct(token, CAROL_CHECKS)
    assert {allowed for allowed, _ in direct.values()} == {True, False}
    assert direct[("read", "globex/roadmap")][0] is False

    enqueued = stack.enqueue(token, CAROL_CHECKS)
    queued = stack.broker_contents()
    assert queued.count(b"warden_identity") >= 2 * len(CAROL_CHECKS)  # Celery's and arq's jobs
    assert token.encode() not in queued, "the user's own token reached Redis"
    with caplog.at_level(logging.DEBUG):
        outcomes = stack.run(enqueued)

    client_id = stack.worker_account["client_id"]
    decision_ids = []
    for queue in QUEUES:
        for check in CAROL_CHECKS:
            outcome = outcomes[(queue, check)]
            assert (outcome["allowed"], outcome["reason"]) == direct[check], (queue, check)
            assert outcome["principal"] == "acme/carol"
            assert (outcome["subject"], outcome["tenant"]) == ("carol", "acme")
            assert outcome["actors"] == [client_id]
            decision_ids.append(outcome["decision_id"])

    # The decision log: the user is the principal, the service account the actor.
    for decision_id in decision_ids:
        record = record_of(stack, decision_id)
        assert record["principal"] == {"type": "User", "id": "acme/carol", "tenant": "acme"}
        assert record["actors"] == [stack.worker_principal]
    searched = {
        record["id"]: record for record in stack.warden.search_decisions('User::"acme/carol"')
    }
    for decision_id in decision_ids:
        assert searched[decision_id]["actors"] == [stack.worker_principal]
    # The user's own checks have no actor.
    own = [record for record in searched.values() if record["id"] not in decision_ids]
    assert own and all(not record.get("actors") for record in own)

    # No token in any worker's log: arq's (captured here), Celery's (its process's file). A
    # JWT starts with `eyJ` (base64url of `{"`), the user's and the exchanged ones alike.
    logged = "\n".join(record.getMessage() for record in caplog.records)
    logged += "\n".join(path.read_text(errors="replace") for path in stack.worker_logs)
    assert "jobs_live.check_document" in logged and "check_document" in logged
    assert "eyJ" not in logged
    assert "acme/carol" in logged  # the arq line names the user (IdentityPayload's repr)


def test_revoking_the_user_between_enqueue_and_run_denies_the_job(stack: Stack) -> None:
    token = stack.warden.mint("dave", "acme", scope=USER_SCOPE)
    checks: list[Check] = [("read", "acme/roadmap")]
    assert stack.direct(token, checks)[checks[0]] == (True, "permitted")
    enqueued = stack.enqueue(token, checks)

    stack.warden.revoke_subject("dave")
    with WardenClient(stack.warden.url) as client, pytest.raises(InvalidTokenError) as revoked:
        client.check(token, "read", "Document", "acme/roadmap")
    assert revoked.value.reason == "token_revoked"

    for (queue, _), outcome in stack.run(enqueued).items():
        assert outcome["allowed"] is False, queue
        assert outcome["reason"] in ("token_revoked", "principal_disabled", "no_permit"), outcome


def test_disabling_the_user_between_enqueue_and_run_denies_the_job(stack: Stack) -> None:
    token = stack.warden.mint("bob", "acme", scope=USER_SCOPE)
    checks: list[Check] = [("edit", "acme/roadmap")]
    assert stack.direct(token, checks)[checks[0]][0] is True
    enqueued = stack.enqueue(token, checks)
    stack.warden.set_principal_status("acme", 'User::"acme/bob"', "disabled")
    try:
        for (queue, _), outcome in stack.run(enqueued).items():
            assert outcome["allowed"] is False, queue
            assert outcome["reason"] in ("principal_disabled", "token_revoked"), outcome
    finally:
        stack.warden.set_principal_status("acme", 'User::"acme/bob"', "active")


def test_disabling_the_account_between_enqueue_and_run_denies_its_jobs(stack: Stack) -> None:
    account = stack.warden.create_service_account("acme", "alice", WORKER_SCOPES)
    token = stack.warden.mint("carol", "acme", scope=USER_SCOPE)
    with stack.exchanger(account) as exchanger:
        identity = exchanger.exchange(token)  # captured from a plain token string
    with WardenClient(stack.warden.url) as client:
        assert authorize_job(client, "read", "Document", "acme/roadmap", identity=identity)

    sent = enqueue_celery(jobs_live_worker.check_document, identity, args=("read", "acme/roadmap"))

    async def arq_then_asyncio() -> tuple[str, dict[str, Any] | BaseException]:
        pool = await create_pool(RedisSettings(host="127.0.0.1", port=stack.redis_port, database=2))
        try:
            queued = await enqueue_arq(
                pool, jobs_live_worker.ARQ_FUNCTION, identity, "read", "acme/roadmap"
            )
            assert queued is not None
        finally:
            await pool.aclose()
        go = asyncio.Event()

        async def job() -> dict[str, Any]:
            await asyncio.wait_for(go.wait(), RESULT_TIMEOUT_SECONDS)
            async with AsyncWardenClient(stack.warden.url) as client:
                try:
                    decision = await authorize_job_async(client, "read", "Document", "acme/roadmap")
                    return jobs_live_worker.outcome(decision, None)
                except JobDeniedError as denied:
                    return jobs_live_worker.outcome(None, denied)

        task = spawn(job(), identity)
        await asyncio.to_thread(stack.warden.disable_service_account, "acme", account["client_id"])
        go.set()
        return queued.job_id, await asyncio.wait_for(task, RESULT_TIMEOUT_SECONDS)

    arq_id, asyncio_outcome = asyncio.run(arq_then_asyncio())
    check: Check = ("read", "acme/roadmap")
    arq_outcome = asyncio.run(stack.run_arq([(check, arq_id)]))[0]
    celery_outcome = stack.run_celery([(check, sent.id)])[0]
    for outcome in (asyncio_outcome, arq_outcome, celery_outcome):
        assert isinstance(outcome, dict)
        assert outcome["allowed"] is False, outcome
        assert outcome["reason"] in ("token_revoked", "principal_disabled"), outcome


def test_an_exchange_cannot_widen_scopes_or_switch_tenant(stack: Stack) -> None:
    token = stack.warden.mint("carol", "acme", scope=USER_SCOPE)
    with stack.exchanger() as exchanger:
        identity = exchanger.exchange(token)
        # The scopes both hold: the user's documents:read, not the account's documents:write.
        assert identity.scopes == ("documents:read",)
        assert (identity.subject, identity.tenant) == ("carol", "acme")
        with pytest.raises(TokenRequestError) as widened:
            exchanger.exchange(token, scope="documents:write")
        assert (widened.value.error, widened.value.status) == ("invalid_scope", 400)
        with pytest.raises(TokenRequestError) as widened:
            exchanger.exchange(token, scope="documents:read warden:token-exchange")
        assert widened.value.error == "invalid_scope"

    globex = stack.warden.create_service_account("globex", "alice", WORKER_SCOPES)
    with stack.exchanger(globex) as exchanger, pytest.raises(TokenRequestError) as other_tenant:
        exchanger.exchange(token)
    assert (other_tenant.value.error, other_tenant.value.status) == ("invalid_request", 400)

    # A resource of another tenant stays another tenant's: a deny, as for the user.
    with WardenClient(stack.warden.url) as client, pytest.raises(JobDeniedError) as denied:
        authorize_job(client, "read", "Document", "globex/roadmap", identity=identity)
    assert denied.value.decision is not None
    assert denied.value.decision.principal.id == "acme/carol"

    plain = stack.warden.create_service_account("acme", "alice", ["documents:read"])
    with stack.exchanger(plain) as exchanger, pytest.raises(TokenRequestError) as unauthorized:
        exchanger.exchange(token)
    assert (unauthorized.value.error, unauthorized.value.status) == ("unauthorized_client", 400)

    wrong = {**stack.worker_account, "client_secret": "wsa_wrong"}
    with stack.exchanger(wrong) as exchanger, pytest.raises(TokenRequestError) as unknown:
        exchanger.exchange(token)
    assert (unknown.value.error, unknown.value.status) == ("invalid_client", 401)


def test_rfc_8693_errors_reach_the_sdk(stack: Stack) -> None:
    token = stack.warden.mint("carol", "acme", scope=USER_SCOPE)
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = int(time.time())
    forged = jwt.encode(
        {
            "iss": IDP_ISSUER,
            "aud": IDP_AUDIENCE,
            "sub": "carol",
            "org_id": "acme",
            "iat": now,
            "exp": now + 300,
            "scope": USER_SCOPE,
        },
        stranger,
        algorithm="RS256",
        headers={"kid": IDP_KID},
    )
    expired = stack.warden.mint("carol", "acme", scope=USER_SCOPE, expires_in=-60)
    with stack.exchanger() as exchanger:
        for subject_token in ("not-a-token", forged, expired):
            with pytest.raises(TokenRequestError) as refused:
                exchanger.exchange(subject_token)
            assert (refused.value.error, refused.value.status) == ("invalid_request", 400)
        with pytest.raises(TokenRequestError) as unsupported:
            exchanger.exchange(token, subject_token_type=ID_TOKEN_TYPE)
        assert unsupported.value.error == "invalid_request"
        with pytest.raises(TokenRequestError) as elsewhere:
            exchanger.exchange(token, audience="elsewhere")
        assert (elsewhere.value.error, elsewhere.value.status) == ("invalid_target", 400)

        for audience in (EXCHANGE_AUDIENCE, DEFAULT_AUDIENCE):
            aimed = exchanger.exchange(token, audience=audience)
            aud = claims_of(aimed.token)["aud"]
            assert audience in (aud if isinstance(aud, list) else [aud])

        jwt_typed = exchanger.exchange(token, subject_token_type=JWT_TOKEN_TYPE)
        assert jwt_typed.subject == "carol"


def test_an_exchanged_token_lives_short_and_never_past_the_users(stack: Stack) -> None:
    long_lived = stack.warden.mint("carol", "acme", scope=USER_SCOPE, expires_in=3600)
    short_lived = stack.warden.mint("carol", "acme", scope=USER_SCOPE, expires_in=60)
    with stack.exchanger() as exchanger:
        capped = exchanger.exchange(long_lived)
        bounded = exchanger.exchange(short_lived)
    assert capped.expires_at <= time.time() + 300 + 5
    assert bounded.expires_at <= claims_of(short_lived)["exp"]
    assert not capped.expired() and not bounded.expired()


def test_exchanging_an_exchanged_token_keeps_the_chain(stack: Stack) -> None:
    token = stack.warden.mint("carol", "acme", scope=USER_SCOPE)
    second = stack.warden.create_service_account("acme", "alice", WORKER_SCOPES)
    with stack.exchanger() as first_exchanger, stack.exchanger(second) as second_exchanger:
        first = first_exchanger.exchange(token)
        chained = second_exchanger.exchange(first.token)
    assert [actor.subject for actor in chained.actors] == [
        second["client_id"],
        stack.worker_account["client_id"],
    ]
    assert (chained.subject, chained.tenant) == ("carol", "acme")
    with WardenClient(stack.warden.url) as client:
        decision = authorize_job(client, "read", "Document", "acme/roadmap", identity=chained)
    record = record_of(stack, decision.decision_id)
    assert record["principal"]["id"] == "acme/carol"
    assert record["actors"] == [
        {"type": "ServiceAccount", "id": f"acme/{second['client_id']}", "tenant": "acme"},
        stack.worker_principal,
    ]


def test_a_user_who_may_not_enqueue_gets_no_job(stack: Stack) -> None:
    erin = stack.warden.mint("erin", "acme", scope=USER_SCOPE)  # no role: may not list acme
    answer = stack.http.post(
        "/tenants/acme/jobs",
        json={"queue": "asyncio", "action": "read", "resource_id": "acme/roadmap"},
        headers={"Authorization": f"Bearer {erin}"},
    )
    assert answer.status_code == 403
    missing = stack.http.post(
        "/tenants/acme/jobs", json={"queue": "asyncio", "action": "read", "resource_id": "x"}
    )
    assert missing.status_code == 401
    assert not stack.gate.results
