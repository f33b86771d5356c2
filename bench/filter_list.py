"""Issue #21's end-to-end list benchmark: 100,000 documents listed through a data-filter plan
against the same list decided row by row, both as a FastAPI/SQLAlchemy application does it.

Run from the repository root with the SDK's venv (scripts/test-python.sh creates it):

    cargo build --release -p warden
    clients/python/.venv/bin/python bench/filter_list.py

One `warden serve` (WARDEN_BIN, default target/release/warden) on a free loopback port, on the
example pack (examples/saas, its entity file copied to a temporary directory), with a PEP
credential and an HS256 development issuer whose secret the script holds, so it mints the user's
token itself. The decision log is on, as by default (durable JSON lines in the temporary
directory); AUDIT=off turns it off. A SQLite file in the same directory holds a documents table
shaped like the example app's (examples/fastapi-docs/docs_app/db.py): DOCUMENTS documents of
tenant acme (owners acme/alice, acme/bob, acme/carol in turn; classifications public, internal,
internal, restricted in turn; every tenth in folder acme/contracts/2026) and DOCUMENTS / 10 of
globex, with an index on the tenant. None of them is in Warden's entity data.

The user is acme/carol, a viewer (her roles come from the entity file), reading documents.
Each round, in a fresh session each:
- filter: `client.filter(token, "read", "Document")` (plan), then
  `session.scalars(authorized_select(Document, plan, FIELD_MAP)).all()` (query); total = both;
- per row: every acme document selected, then `client.check_many` in batches of the server's
  `server.max_batch_size` (BATCH, 100 by default), each document's attributes sent as the
  resource's `properties` (as the example app's `document_properties` does), the allowed kept.
The two lists must be the same set of ids, or the script exits with an error. Then the plan's
latency alone: PLAN_CALLS (200) sequential `client.filter` calls, p50 and p99.

The decision cache (4,096 decisions, first in first out) does not help the per-row list: its
inputs come in the same order every round and, past 4,096 documents, outnumber the cache, so
every one is decided (the progress lines show the cache's hits and misses).
The per-row path cannot send a document's folder (a check's `properties` are attributes, not
parents); carol's decisions do not depend on folders, so both lists agree.

Knobs (environment): WARDEN_BIN, ROUNDS (3), DOCUMENTS (100000), GLOBEX_DOCUMENTS
(DOCUMENTS / 10), BATCH (100), PLAN_CALLS (200), AUDIT (on). Prints Markdown tables on stdout,
progress on stderr. Every wait is bounded.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import jwt
from sqlalchemy import Index, String, create_engine, insert, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from warden import Check, Entity, WardenClient
from warden.sqlalchemy import FieldMap, authorized_select, in_tree

REPO = Path(__file__).resolve().parents[1]
PACK_DIR = REPO / "examples" / "saas"
WARDEN_BIN = Path(os.environ.get("WARDEN_BIN", "target/release/warden"))
ROUNDS = int(os.environ.get("ROUNDS", "3"))
DOCUMENTS = int(os.environ.get("DOCUMENTS", "100000"))
GLOBEX_DOCUMENTS = int(os.environ.get("GLOBEX_DOCUMENTS", str(DOCUMENTS // 10)))
BATCH = int(os.environ.get("BATCH", "100"))
PLAN_CALLS = int(os.environ.get("PLAN_CALLS", "200"))
AUDIT = os.environ.get("AUDIT", "on").lower() not in ("0", "off", "false", "no")
READY_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 10.0
CLIENT_TIMEOUT_SECONDS = 30.0

ISSUER = "https://bench.warden.local"
AUDIENCE = "warden"
SECRET_ENV = "FILTER_BENCH_HS256_SECRET"  # noqa: S105 - the variable's name, not a secret
TENANT = "acme"
USER = "carol"
OWNERS = ["acme/alice", "acme/bob", "acme/carol"]
CLASSIFICATIONS = ["public", "internal", "internal", "restricted"]
FOLDERS = [
    ("acme/contracts", "acme", None),
    ("acme/contracts/2026", "acme", "acme/contracts"),
    ("globex/contracts", "globex", None),
    ("globex/contracts/2026", "globex", "globex/contracts"),
]


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# The example app's tables (examples/fastapi-docs/docs_app/db.py), without shares.
class Base(DeclarativeBase):
    pass


class Document(Base):
    __tablename__ = "documents"
    __table_args__ = (Index("ix_documents_tenant", "tenant"),)

    tenant: Mapped[str] = mapped_column(String(64), primary_key=True)
    local_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(default="")
    owner: Mapped[str] = mapped_column(String(200))
    classification: Mapped[str] = mapped_column(String(32))
    folder: Mapped[str | None] = mapped_column(String(200), default=None)

    @property
    def warden_id(self) -> str:
        return f"{self.tenant}/{self.local_id}"


class Folder(Base):
    __tablename__ = "folders"

    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64))
    parent: Mapped[str | None] = mapped_column(String(200))


# The example app's DOCUMENT_FIELDS.
FIELD_MAP = FieldMap(
    id=Document.tenant + "/" + Document.local_id,
    fields={
        "tenant": Document.tenant,
        "owner": Document.owner,
        "classification": Document.classification,
    },
    member_of={"Folder": in_tree(Document.folder, Folder.id, Folder.parent)},
    resource_type="Document",
)


def document_properties(document: Document) -> dict[str, Any]:
    """The example app's `document_properties`: what Warden uses for an unknown document."""
    return {
        "tenant": {"__entity": {"type": "Tenant", "id": document.tenant}},
        "owner": {"__entity": {"type": "User", "id": document.owner}},
        "classification": document.classification,
    }


def make_database(path: Path) -> Any:
    engine = create_engine(f"sqlite:///{path}")
    Base.metadata.create_all(engine)
    started = time.perf_counter()
    with Session(engine) as session, session.begin():
        session.execute(
            insert(Folder), [{"id": i, "tenant": t, "parent": p} for i, t, p in FOLDERS]
        )
        for tenant, count in ((TENANT, DOCUMENTS), ("globex", GLOBEX_DOCUMENTS)):
            owners = OWNERS if tenant == TENANT else [f"globex/{o.split('/')[1]}" for o in OWNERS]
            rows = [
                {
                    "tenant": tenant,
                    "local_id": f"doc-{n:06d}",
                    "title": f"Document {n}",
                    "body": "",
                    "owner": owners[n % len(owners)],
                    "classification": CLASSIFICATIONS[n % len(CLASSIFICATIONS)],
                    "folder": f"{tenant}/contracts/2026" if n % 10 == 0 else None,
                }
                for n in range(count)
            ]
            session.execute(insert(Document), rows)
    log(
        f"database: {DOCUMENTS:,} {TENANT} + {GLOBEX_DOCUMENTS:,} globex documents in"
        f" {time.perf_counter() - started:.1f} s"
    )
    return engine


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def start_warden(
    work: Path, hs256_secret: str, pep_secret: str
) -> tuple[subprocess.Popen[bytes], str]:
    """Write the config into `work`, start `warden serve`, wait (bounded) for /readyz."""
    binary = WARDEN_BIN if WARDEN_BIN.is_absolute() else REPO / WARDEN_BIN
    if not binary.is_file():
        sys.exit(f"the warden binary is not at {binary}: build it or set WARDEN_BIN")
    entities_file = work / "entities.json"
    shutil.copyfile(PACK_DIR / "entities.json", entities_file)
    port = free_port()
    audit = f'dir = "{work / "audit"}"' if AUDIT else "enabled = false"
    config = work / "warden.toml"
    config.write_text(
        f"""[server]
listen = "127.0.0.1:{port}"
max_batch_size = {BATCH}

[policy]
dir = {json.dumps(str(PACK_DIR))}
entities_file = {json.dumps(str(entities_file))}
watch = false

[peps]
credentials = ["sha256:{hashlib.sha256(pep_secret.encode()).hexdigest()}"]

[[issuers]]
issuer = "{ISSUER}"
audiences = ["{AUDIENCE}"]
algorithms = ["HS256"]
hs256_secret_env = "{SECRET_ENV}"

[issuers.claims]
tenant = "org_id"
roles = "roles"

[audit]
{audit}
"""
    )
    # WARDEN_* variables would override the config (WARDEN_<SECTION>__<KEY>): none is passed.
    env = {k: v for k, v in os.environ.items() if not k.startswith("WARDEN_")}
    env[SECRET_ENV] = hs256_secret
    env.setdefault("RUST_LOG", "warn")
    log_file = work / "warden.log"
    with log_file.open("wb") as out:
        process = subprocess.Popen(  # noqa: S603 - our own binary, fixed arguments
            [str(binary), "serve", "--config", str(config), "--log-format", "text"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=work,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"warden serve exited ({process.returncode}):\n{log_file.read_text()}")
        try:
            with urllib.request.urlopen(f"{url}/readyz", timeout=1.0) as answer:  # noqa: S310
                if answer.status == 200:
                    log(f"warden serve ({binary}) ready at {url}")
                    return process, url
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.1)
    stop(process)
    sys.exit(f"warden serve not ready in {READY_TIMEOUT_SECONDS:.0f} s:\n{log_file.read_text()}")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=STOP_TIMEOUT_SECONDS)


def mint(secret: str) -> str:
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": USER,
        "org_id": TENANT,
        "iat": now - 5,
        "exp": now + 3600,
    }
    return jwt.encode(claims, secret, algorithm="HS256")


def cache_counts(url: str) -> dict[str, int]:
    """`warden_decision_cache_total` by result, from /metrics."""
    with urllib.request.urlopen(f"{url}/metrics", timeout=5.0) as answer:  # noqa: S310
        text = answer.read().decode()
    counts = {"hit": 0, "miss": 0}
    for line in text.splitlines():
        for result in counts:
            if line.startswith(f'warden_decision_cache_total{{result="{result}"}}'):
                counts[result] = int(float(line.split()[-1]))
    return counts


def list_by_filter(client: WardenClient, token: str, engine: Any) -> tuple[set[str], float, float]:
    """(ids, plan seconds, query seconds)."""
    with Session(engine) as session:
        started = time.perf_counter()
        plan = client.filter(token, "read", "Document")
        planned = time.perf_counter()
        documents = session.scalars(authorized_select(Document, plan, FIELD_MAP)).all()
        done = time.perf_counter()
    return {d.warden_id for d in documents}, planned - started, done - planned


def list_by_checks(client: WardenClient, token: str, engine: Any) -> tuple[set[str], float, int]:
    """(ids, seconds, check_many calls)."""
    with Session(engine) as session:
        started = time.perf_counter()
        documents = session.scalars(select(Document).where(Document.tenant == TENANT)).all()
        allowed: list[Document] = []
        calls = 0
        for first in range(0, len(documents), BATCH):
            batch = documents[first : first + BATCH]
            decisions = client.check_many(
                token,
                [
                    Check("read", Entity("Document", d.warden_id, document_properties(d)))
                    for d in batch
                ],
            )
            calls += 1
            allowed.extend(
                d for d, decision in zip(batch, decisions, strict=True) if decision.allowed
            )
        done = time.perf_counter()
    return {d.warden_id for d in allowed}, done - started, calls


def same_or_exit(by_filter: set[str], by_checks: set[str], round_number: int) -> None:
    if by_filter == by_checks:
        return
    only_filter = sorted(by_filter - by_checks)
    only_checks = sorted(by_checks - by_filter)
    sys.exit(
        f"round {round_number}: the filter and the per-row checks disagree:"
        f" {len(by_filter):,} ids by filter, {len(by_checks):,} by checks;"
        f" only by filter ({len(only_filter):,}): {only_filter[:10]};"
        f" only by checks ({len(only_checks):,}): {only_checks[:10]}"
    )


def nearest_rank(sorted_values: list[float], fraction: float) -> float:
    """The nearest-rank percentile of sorted values."""
    return sorted_values[max(0, math.ceil(len(sorted_values) * fraction) - 1)]


def main() -> None:
    if ROUNDS < 1 or DOCUMENTS < 1 or BATCH < 1 or PLAN_CALLS < 1:
        sys.exit("ROUNDS, DOCUMENTS, BATCH and PLAN_CALLS must be at least 1")
    hs256_secret = secrets.token_hex(32)
    pep_secret = secrets.token_urlsafe(32)
    with tempfile.TemporaryDirectory(prefix="warden-filter-list-") as tmp:
        work = Path(tmp)
        engine = make_database(work / "documents.db")
        process, url = start_warden(work, hs256_secret, pep_secret)
        try:
            with WardenClient(url, timeout=CLIENT_TIMEOUT_SECONDS) as client:
                run(client, mint(hs256_secret), engine, url)
        finally:
            stop(process)
            engine.dispose()


def run(client: WardenClient, token: str, engine: Any, url: str) -> None:
    # Warm-up, not measured: the token verified once, the database file read once.
    plan = client.filter(token, "read", "Document")
    with Session(engine) as session:
        session.execute(select(Document.local_id)).all()
    log(f"plan for {TENANT}/{USER}: {plan.decision} {json.dumps(plan.condition)}")

    rounds = []
    for number in range(1, ROUNDS + 1):
        by_filter, plan_s, query_s = list_by_filter(client, token, engine)
        before = cache_counts(url)
        by_checks, checks_s, calls = list_by_checks(client, token, engine)
        after = cache_counts(url)
        same_or_exit(by_filter, by_checks, number)
        if not by_filter or any(not i.startswith(f"{TENANT}/") for i in by_filter):
            sys.exit(f"round {number}: the list is empty or has another tenant's documents")
        total_s = plan_s + query_s
        rounds.append(
            {
                "plan": plan_s * 1e3,
                "query": query_s * 1e3,
                "filter": total_s * 1e3,
                "checks": checks_s * 1e3,
                "ratio": checks_s / total_s,
                "rows": len(by_filter),
            }
        )
        log(
            f"round {number}: filter {total_s * 1e3:.1f} ms, per row {checks_s * 1e3:.1f} ms"
            f" ({calls} check_many calls; decision cache {after['hit'] - before['hit']} hits,"
            f" {after['miss'] - before['miss']} misses)"
        )

    latencies = []
    for _ in range(PLAN_CALLS):
        started = time.perf_counter_ns()
        client.filter(token, "read", "Document")
        latencies.append((time.perf_counter_ns() - started) / 1e3)
    latencies.sort()

    print(
        f"List by data filter vs per-row checks, {time.strftime('%Y-%m-%d', time.gmtime())}:"
        f" {DOCUMENTS:,} acme + {GLOBEX_DOCUMENTS:,} globex documents in SQLite,"
        f" user {TENANT}/{USER} (viewer) reading; check_many batches of {BATCH};"
        f" decision log {'on' if AUDIT else 'off'}; {WARDEN_BIN}"
    )
    print()
    print("| Round | Plan | Query | Filter total | Per-row total | Per-row / filter | Rows |")
    print("|---|---|---|---|---|---|---|")
    for number, r in enumerate(rounds, 1):
        print(
            f"| {number} | {r['plan']:.2f} ms | {r['query']:.1f} ms | {r['filter']:.1f} ms"
            f" | {r['checks']:.1f} ms | {r['ratio']:.1f} | {r['rows']:,} |"
        )
    med = {key: statistics.median(r[key] for r in rounds) for key in rounds[0]}
    print(
        f"| median | {med['plan']:.2f} ms | {med['query']:.1f} ms | {med['filter']:.1f} ms"
        f" | {med['checks']:.1f} ms | {med['ratio']:.1f} | {int(med['rows']):,} |"
    )
    print()
    print("| Plan latency alone | Calls | p50 | p99 |")
    print("|---|---|---|---|")
    print(
        f'| `client.filter(token, "read", "Document")` | {PLAN_CALLS}'
        f" | {nearest_rank(latencies, 0.50):.0f} µs | {nearest_rank(latencies, 0.99):.0f} µs |"
    )


if __name__ == "__main__":
    main()
