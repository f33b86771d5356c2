#!/usr/bin/env python3
"""Issue #20's scale benchmark: one run prints every figure the issue asks for.

Started by bench/scale.sh (which builds the release binary and makes a fresh PostgreSQL
database). Two `warden serve` replicas (A takes the writes, B only reads the change feed) share
the database; a third (C) starts after the load and reads everything at start.

Figures:
- import time of the whole data (ENTITIES entities, streamed by `warden entity import`);
- RSS of A, B and C after load, above an empty server, per entity;
- write-to-in-force: a role grant answered by A (in force there before it answers), and the
  time until B decides with it, at the small and at the full size;
- decision p50 over HTTP with inputs new to the cache, at the small and the full size, next to
  GET /healthz on the same server in the same rounds;
- AuthZEN resource search over SEARCH_DOCS documents of one tenant: every page within the
  request timeout, and /healthz p99 while four such searches run.
Only the standard library is used; every loop is bounded.
"""

import http.client
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time

WARDEN = os.environ["WARDEN"]
PG_URL = os.environ["PG_URL"]
ENTITIES = int(os.environ.get("ENTITIES", "1000000"))
# Tenants imported at once (each its own `warden entity import`): the server validates their
# batches on both cores, and one read of the change feed applies several of them.
PARALLEL = int(os.environ.get("PARALLEL", "2"))
SMALL = 1000
SEARCH_DOCS = int(os.environ.get("SEARCH_DOCS", "100000"))
USERS_PER_TENANT = 100
DOCS_PER_TENANT = 790
FOLDERS_PER_TENANT = 10
PER_TENANT = USERS_PER_TENANT + DOCS_PER_TENANT + FOLDERS_PER_TENANT
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORK = tempfile.mkdtemp(prefix="warden-scale-")
PROCESSES = []


def log(message):
    print(message, file=sys.stderr, flush=True)


def free_port():
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_config(name, port):
    path = os.path.join(WORK, f"{name}.toml")
    with open(path, "w") as out:
        out.write(
            f"""[server]
listen = "127.0.0.1:{port}"
request_timeout_ms = 5000
[policy]
dir = "{REPO}/examples/saas"
entities_file = "{REPO}/examples/saas/entities.json"
watch = false
[storage]
url = "{PG_URL}"
poll_interval_ms = 1000
[peps]
allow_unauthenticated = true
[audit]
enabled = false
"""
        )
    return path


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Server:
    def __init__(self, name):
        self.port = free_port()
        self.config = write_config(name, self.port)
        self.name = name
        self.process = None

    def start(self):
        logfile = open(os.path.join(WORK, f"{self.name}.log"), "w")
        self.process = subprocess.Popen(
            [WARDEN, "serve", "--config", self.config],
            stdout=logfile,
            stderr=subprocess.STDOUT,
            env={**os.environ, "RUST_LOG": "warn"},
        )
        PROCESSES.append(self.process)
        deadline = time.time() + 600
        while time.time() < deadline:
            try:
                status, _ = self.get("/readyz")
                if status == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.1)
        raise SystemExit(f"{self.name} did not become ready")

    def connection(self):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)

    def get(self, path, connection=None):
        own = connection is None
        connection = connection or self.connection()
        connection.request("GET", path)
        response = connection.getresponse()
        body = response.read()
        if own:
            connection.close()
        return response.status, body

    def post(self, path, body, token=None, connection=None):
        own = connection is None
        connection = connection or self.connection()
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        connection.request("POST", path, json.dumps(body), headers)
        response = connection.getresponse()
        answer = response.read()
        if own:
            connection.close()
        return response.status, json.loads(answer or b"null")

    def rss(self):
        return rss_kib(self.process.pid)


def tenant_file(tenant, documents=DOCS_PER_TENANT):
    """One tenant's entities as JSON lines: users (the first half viewers, the rest editors),
    folders, and documents owned by editors."""
    path = os.path.join(WORK, f"{tenant}.jsonl")
    rng = random.Random(tenant)
    with open(path, "w") as out:
        for u in range(USERS_PER_TENANT):
            role = "viewer" if u < USERS_PER_TENANT // 2 else "editor"
            out.write(json.dumps({"uid": {"type": "User", "id": f"u{u}"},
                                  "attrs": {"email": f"u{u}@{tenant}.example"},
                                  "parents": [{"type": "Role", "id": role}]}) + "\n")
        for f in range(FOLDERS_PER_TENANT):
            out.write(json.dumps({"uid": {"type": "Folder", "id": f"f{f}"}, "attrs": {},
                                  "parents": []}) + "\n")
        for d in range(documents):
            owner = rng.randrange(USERS_PER_TENANT // 2, USERS_PER_TENANT)
            out.write(json.dumps({
                "uid": {"type": "Document", "id": f"d{d}"},
                "attrs": {"owner": {"__entity": {"type": "User", "id": f"{tenant}/u{owner}"}},
                          "classification": "internal"},
                "parents": [{"type": "Folder", "id": f"f{rng.randrange(FOLDERS_PER_TENANT)}"}],
            }) + "\n")
    return path


def import_tenant(server, secret, tenant, path):
    result = subprocess.run(
        [WARDEN, "entity", "import", "--server", f"http://127.0.0.1:{server.port}",
         "--tenant", tenant, "--batch-size", "5000", path],
        env={**os.environ, "WARDEN_ADMIN_TOKEN": secret}, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"import of {tenant} failed: {result.stdout}{result.stderr}")


def decision_p50(server, rounds=3, requests=1500, salt=""):
    """p50 (microseconds) of evaluations whose input is new to the cache, and of /healthz,
    interleaved in rounds on one kept-alive connection each."""
    decisions, floors = [], []
    for r in range(rounds):
        connection = server.connection()
        for n in range(requests):
            started = time.perf_counter()
            server.get("/healthz", connection)
            floors.append(time.perf_counter() - started)
        connection.close()
        connection = server.connection()
        for n in range(requests):
            body = {"subject": {"type": "User", "id": f"t0/u{n % USERS_PER_TENANT}"},
                    "action": {"name": "read"},
                    "resource": {"type": "Document", "id": f"t0/d{(n * 7 + r) % DOCS_PER_TENANT}"},
                    "context": {"support_ticket": f"{salt}-{r}-{n}"}}
            started = time.perf_counter()
            status, _ = server.post("/access/v1/evaluation", body, connection=connection)
            decisions.append(time.perf_counter() - started)
            assert status == 200, status
        connection.close()
    return statistics.median(decisions) * 1e6, statistics.median(floors) * 1e6


def write_to_in_force(writer, reader, secret, samples=10, offset=0):
    """A role grant: how long A takes to answer (in force on A when it does), and how long
    until B decides with it. Medians and maxima, in milliseconds."""
    on_writer, on_reader = [], []
    for i in range(samples):
        user = f"u{offset + i}"
        document = f"t0/d{offset + i}"
        ask = {"subject": {"type": "User", "id": f"t0/{user}"}, "action": {"name": "delete"},
               "resource": {"type": "Document", "id": document}}
        status, answer = writer.post("/access/v1/evaluation", ask)
        assert status == 200 and answer["decision"] is False, answer
        started = time.perf_counter()
        status, answer = writer.post(
            "/v1/admin/tenants/t0/roles/grant",
            {"principal": f'User::"{user}"', "role": 'Role::"admin"', "reason": "scale bench"},
            token=secret)
        answered = time.perf_counter() - started
        assert status == 200, answer
        status, answer = writer.post("/access/v1/evaluation", ask)
        assert answer["decision"] is True, "the grant is not in force on the writer when it answers"
        on_writer.append(answered)
        deadline = started + 10
        while time.perf_counter() < deadline:
            status, answer = reader.post("/access/v1/evaluation", ask)
            if answer["decision"] is True:
                break
            time.sleep(0.002)
        else:
            raise SystemExit("the second replica did not see the grant within 10 s")
        on_reader.append(time.perf_counter() - started)
    ms = lambda values: (statistics.median(values) * 1e3, max(values) * 1e3)
    return ms(on_writer), ms(on_reader)


def search_under_load(server):
    """Four searches over the big tenant's documents at once, each paging to the end, while
    /healthz is asked every 10 ms; the slowest page, and /healthz p50 and p99."""
    pages, failures, stop = [], [], threading.Event()

    def search(n):
        token, rounds = "", 0
        connection = server.connection()
        while rounds < 1000:
            rounds += 1
            started = time.perf_counter()
            status, answer = server.post("/access/v1/search/resource", {
                "subject": {"type": "User", "id": f"big/u{60 + n}"},
                "action": {"name": "read"}, "resource": {"type": "Document"},
                "page": {"limit": 1000, "token": token}}, connection=connection)
            pages.append(time.perf_counter() - started)
            if status != 200:
                failures.append(status)
                return
            token = answer["page"]["next_token"]
            if not token:
                return

    healthz = []

    def probe():
        connection = server.connection()
        while not stop.is_set():
            started = time.perf_counter()
            server.get("/healthz", connection)
            healthz.append(time.perf_counter() - started)
            time.sleep(0.01)

    prober = threading.Thread(target=probe)
    prober.start()
    started = time.perf_counter()
    searchers = [threading.Thread(target=search, args=(n,)) for n in range(4)]
    for thread in searchers:
        thread.start()
    for thread in searchers:
        thread.join(timeout=600)
    elapsed = time.perf_counter() - started
    stop.set()
    prober.join()
    healthz.sort()
    p99 = healthz[min(len(healthz) - 1, int(len(healthz) * 0.99))]
    return {"pages": len(pages), "slowest_page_ms": max(pages) * 1e3,
            "four_searches_s": elapsed, "healthz_p50_ms": statistics.median(healthz) * 1e3,
            "healthz_p99_ms": p99 * 1e3, "failures": failures}


def main():
    a, b = Server("a"), Server("b")
    init = subprocess.run([WARDEN, "admin", "init", "--config", a.config],
                          capture_output=True, text=True, check=True)
    secret = next(line for line in init.stdout.splitlines() if line.startswith("wdn_admin_"))
    a.start()
    b.start()
    time.sleep(2)
    empty = {"a": a.rss(), "b": b.rss()}
    log(f"empty: RSS A {empty['a']} KiB, B {empty['b']} KiB")

    tenants = max(1, (ENTITIES - SEARCH_DOCS) // PER_TENANT)
    small_tenants = max(1, SMALL // PER_TENANT)
    import_tenant(a, secret, "t0", tenant_file("t0"))
    small_entities = PER_TENANT * small_tenants
    time.sleep(2)
    (small_writer, small_reader) = write_to_in_force(a, b, secret, offset=0)
    small_p50, small_floor = decision_p50(a, salt="small")
    log(f"{small_entities} entities: grant {small_writer}, replica {small_reader}, p50 {small_p50:.0f} us (floor {small_floor:.0f})")

    log(f"generating and importing {tenants - 1} more tenants and {SEARCH_DOCS} documents of one")
    started = time.perf_counter()

    def one_tenant(t):
        tenant = f"t{t}"
        path = tenant_file(tenant)
        import_tenant(a, secret, tenant, path)
        os.remove(path)

    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=PARALLEL) as pool:
        for done, _ in enumerate(pool.map(one_tenant, range(1, tenants)), start=2):
            if done % 100 == 0:
                log(f"  {done} tenants, {time.perf_counter() - started:.0f} s")
    big = tenant_file("big", documents=SEARCH_DOCS - USERS_PER_TENANT - FOLDERS_PER_TENANT)
    import_tenant(a, secret, "big", big)
    import_seconds = time.perf_counter() - started
    total = PER_TENANT * tenants + SEARCH_DOCS
    imported = total - small_entities
    log(f"imported {imported} entities in {import_seconds:.1f} s")
    # B applies the feed as it comes; wait until it is at A's version.
    deadline = time.time() + 600
    while time.time() < deadline:
        _, ready_a = a.get("/readyz")
        _, ready_b = b.get("/readyz")
        if json.loads(ready_a)["checks"]["policy"]["store_version"] == json.loads(ready_b)["checks"]["policy"]["store_version"]:
            break
        time.sleep(0.5)
    time.sleep(2)
    c = Server("c")
    started = time.perf_counter()
    c.start()
    c_start = time.perf_counter() - started
    time.sleep(2)
    loaded = {"a": a.rss(), "b": b.rss(), "c": c.rss()}

    (large_writer, large_reader) = write_to_in_force(a, b, secret, offset=20)
    large_p50, large_floor = decision_p50(a, salt="large")
    search = search_under_load(a)

    per_entity = lambda name, base: (loaded[name] - base) * 1024 / total
    print(f"# bench/scale.sh, {time.strftime('%Y-%m-%d', time.gmtime())}: {total} entities "
          f"({tenants} tenants of {PER_TENANT}, one of {SEARCH_DOCS} documents), PostgreSQL\n")
    print("| Figure | Value | Target |")
    print("|---|---|---|")
    print(f"| Import of {imported} entities (`warden entity import`, batches of 5,000, {PARALLEL} tenants at once) | "
          f"{import_seconds:.1f} s ({imported / import_seconds:,.0f}/s) | ≤ 120 s for 1,000,000 |")
    print(f"| RSS after load, replica A (took the writes) | {loaded['a'] / 1024:.0f} MiB, "
          f"{per_entity('a', empty['a']):.0f} B per entity above empty | ≤ 1,024 B |")
    print(f"| RSS after load, replica B (applied the change feed) | {loaded['b'] / 1024:.0f} MiB, "
          f"{per_entity('b', empty['b']):.0f} B per entity above empty | ≤ 1,024 B |")
    print(f"| RSS after load, replica C (read everything at start, {c_start:.1f} s to ready) | "
          f"{loaded['c'] / 1024:.0f} MiB, {per_entity('c', empty['a']):.0f} B per entity above empty | ≤ 1,024 B |")
    print(f"| Grant answered by A (in force there), median / max, {small_entities} entities | "
          f"{small_writer[0]:.1f} / {small_writer[1]:.1f} ms | |")
    print(f"| Grant answered by A, median / max, {total} entities | "
          f"{large_writer[0]:.1f} / {large_writer[1]:.1f} ms | ratio ≤ 1.5: "
          f"{large_writer[0] / small_writer[0]:.2f} |")
    print(f"| Grant in force on B, median / max, {small_entities} entities | "
          f"{small_reader[0]:.1f} / {small_reader[1]:.1f} ms | ≤ 1,000 ms |")
    print(f"| Grant in force on B, median / max, {total} entities | "
          f"{large_reader[0]:.1f} / {large_reader[1]:.1f} ms | ≤ 1,000 ms; ratio "
          f"{large_reader[0] / small_reader[0]:.2f} |")
    print(f"| Decision p50 over HTTP, new inputs, {small_entities} entities (floor /healthz) | "
          f"{small_p50:.0f} µs ({small_floor:.0f} µs) | |")
    print(f"| Decision p50 over HTTP, new inputs, {total} entities (floor /healthz) | "
          f"{large_p50:.0f} µs ({large_floor:.0f} µs) | ratio ≤ 1.2: {large_p50 / small_p50:.2f} |")
    print(f"| Four resource searches over {SEARCH_DOCS} documents at once, paged to the end | "
          f"{search['four_searches_s']:.1f} s, {search['pages']} pages, slowest page "
          f"{search['slowest_page_ms']:.0f} ms, failures {search['failures']} | each page < 5,000 ms |")
    print(f"| /healthz while they run, p50 / p99 | {search['healthz_p50_ms']:.2f} / "
          f"{search['healthz_p99_ms']:.2f} ms | p99 < 10 ms |")


try:
    main()
finally:
    for process in PROCESSES:
        process.terminate()
    for process in PROCESSES:
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
