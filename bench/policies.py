"""Issue #19's policy-scale benchmark, driven by bench/policies.sh.

For each pack size N (100, 10,000 and 100,000 one-line tenant policies on top of the example
pack, in the shape `permit (principal in Group::"tK/legal", action in [...], resource in
Folder::"tK/contracts")`), one server is started on the pack and measured:

- compile: seconds from start to `/readyz` answering 200 (the pack is read, parsed, named,
  validated against the schema and indexed before the server listens), and the server's RSS
  then;
- decision p50 over HTTP: AuthZEN evaluations whose input is new every time (a support-ticket
  counter in the context), each decided by one tenant's own policy (tenants spread over the
  whole pack), interleaved with `/healthz` on the same server (its p50 is the floor);
- throughput (with wrk, when installed): the same new-input evaluations next to `/healthz`, on
  the same server, server on core 0 and wrk on core 1.

Prints one Markdown table. Every wait has a deadline.
"""

import http.client
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

WARDEN = os.environ["WARDEN"]
SIZES = [int(n) for n in os.environ.get("SIZES", "100,10000,100000").split(",")]
SAMPLED_TENANTS = 50
REQUESTS = int(os.environ.get("REQUESTS", "1500"))
ROUNDS = int(os.environ.get("ROUNDS", "3"))
DURATION = os.environ.get("DURATION", "5s")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORK = tempfile.mkdtemp(prefix="warden-policies-")


def log(message):
    print(message, file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def sampled(n):
    step = max(1, n // SAMPLED_TENANTS)
    return list(range(0, n, step))[:SAMPLED_TENANTS]


def make_pack(n):
    pack = os.path.join(WORK, f"pack-{n}")
    shutil.copytree(os.path.join(REPO, "examples/saas"), pack, ignore=shutil.ignore_patterns("tests"))
    with open(os.path.join(pack, "tenants-generated.cedar"), "w") as out:
        for tenant in range(n):
            out.write(
                f'@id("t{tenant}-legal-contracts")\n'
                f'permit (principal in Group::"t{tenant}/legal", action in [Action::"read", Action::"edit"], '
                f'resource in Folder::"t{tenant}/contracts");\n'
            )
    with open(os.path.join(REPO, "examples/saas/entities.json")) as source:
        entities = json.load(source)
    for tenant in sampled(n):
        t = f"t{tenant}"
        ref = {"__entity": {"type": "Tenant", "id": t}}
        entities += [
            {"uid": {"type": "Tenant", "id": t}, "attrs": {"name": t, "plan": "pro"}, "parents": []},
            {"uid": {"type": "Group", "id": f"{t}/legal"}, "attrs": {}, "parents": []},
            {"uid": {"type": "User", "id": f"{t}/lee"}, "attrs": {"tenant": ref},
             "parents": [{"type": "Group", "id": f"{t}/legal"}]},
            {"uid": {"type": "Folder", "id": f"{t}/contracts"}, "attrs": {"tenant": ref}, "parents": []},
            {"uid": {"type": "Document", "id": f"{t}/msa"},
             "attrs": {"tenant": ref, "owner": {"__entity": {"type": "User", "id": f"{t}/lee"}},
                       "classification": "internal"},
             "parents": [{"type": "Folder", "id": f"{t}/contracts"}]},
        ]
    entities_file = os.path.join(WORK, f"entities-{n}.json")
    with open(entities_file, "w") as out:
        json.dump(entities, out)
    return pack, entities_file


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Server:
    def __init__(self, n):
        self.n = n
        self.port = free_port()
        pack, entities = make_pack(n)
        self.config = os.path.join(WORK, f"warden-{n}.toml")
        with open(self.config, "w") as out:
            out.write(
                f"""[server]
listen = "127.0.0.1:{self.port}"
[policy]
dir = "{pack}"
entities_file = "{entities}"
watch = false
[peps]
allow_unauthenticated = true
[audit]
enabled = false
"""
            )
        self.logfile = open(os.path.join(WORK, f"warden-{n}.log"), "w")

    def start(self):
        started = time.perf_counter()
        self.process = subprocess.Popen(
            ["taskset", "-c", "0", WARDEN, "serve", "--config", self.config],
            stdout=self.logfile,
            stderr=subprocess.STDOUT,
            env={**os.environ, "RUST_LOG": "warn"},
        )
        deadline = time.time() + 600
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"the server for {self.n} policies exited; see {self.logfile.name}")
            try:
                connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                connection.request("GET", "/readyz")
                if connection.getresponse().status == 200:
                    self.ready_after = time.perf_counter() - started
                    self.rss = rss_kib(self.process.pid)
                    return self
            except OSError:
                pass
            time.sleep(0.05)
        raise SystemExit(f"the server for {self.n} policies did not become ready")

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=30)


def body(tenant, ticket):
    return json.dumps({
        "subject": {"type": "User", "id": f"t{tenant}/lee"},
        "action": {"name": "read"},
        "resource": {"type": "Document", "id": f"t{tenant}/msa"},
        "context": {"support_ticket": ticket},
    })


def decision_p50(server):
    tenants = sampled(server.n)
    decisions, floors = [], []
    headers = {"Content-Type": "application/json"}
    for r in range(ROUNDS):
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        for _ in range(REQUESTS):
            started = time.perf_counter()
            connection.request("GET", "/healthz")
            connection.getresponse().read()
            floors.append(time.perf_counter() - started)
        for i in range(REQUESTS):
            payload = body(tenants[i % len(tenants)], f"T-{server.n}-{r}-{i}")
            started = time.perf_counter()
            connection.request("POST", "/access/v1/evaluation", payload, headers)
            answer = json.loads(connection.getresponse().read())
            decisions.append(time.perf_counter() - started)
            if answer.get("decision") is not True:
                raise SystemExit(f"expected an allow by the tenant's policy: {answer}")
        connection.close()
    return statistics.median(decisions) * 1e6, statistics.median(floors) * 1e6


LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local counter = 0
local tenants = {%s}
request = function()
  counter = counter + 1
  local t = tenants[(counter %% #tenants) + 1]
  return wrk.format(nil, nil, nil, '{"subject":{"type":"User","id":"t' .. t .. '/lee"},"action":{"name":"read"},"resource":{"type":"Document","id":"t' .. t .. '/msa"},"context":{"support_ticket":"W-' .. counter .. '"}}')
end
"""


def wrk(url, script=None):
    command = ["taskset", "-c", "1", "wrk", "-t1", "-c32", f"-d{DURATION}", "--latency", url]
    if script:
        command[6:6] = ["-s", script]
    output = subprocess.run(command, capture_output=True, text=True, timeout=120).stdout
    for line in output.splitlines():
        if line.startswith("Requests/sec:"):
            return float(line.split()[1])
    return 0.0


def throughput(server):
    if shutil.which("wrk") is None:
        return None
    script = os.path.join(WORK, f"new-{server.n}.lua")
    with open(script, "w") as out:
        out.write(LUA % ", ".join(str(t) for t in sampled(server.n)))
    floors, evaluations = [], []
    for _ in range(ROUNDS):
        floors.append(wrk(f"http://127.0.0.1:{server.port}/healthz"))
        evaluations.append(wrk(f"http://127.0.0.1:{server.port}/access/v1/evaluation", script))
    return statistics.median(evaluations), statistics.median(floors)


def main():
    rows = []
    for n in SIZES:
        log(f"{n} tenant policies: building the pack and starting the server")
        server = Server(n).start()
        try:
            log(f"  ready after {server.ready_after:.2f} s, RSS {server.rss / 1024:.1f} MiB; measuring")
            p50, floor = decision_p50(server)
            rows.append((n, server.ready_after, server.rss, p50, floor, throughput(server)))
        finally:
            server.stop()
    base = rows[0][3]
    print(f"Policy scale, {time.strftime('%Y-%m-%d', time.gmtime())}: example pack + N tenant policies; "
          f"server on core 0, drivers on core 1; {ROUNDS} rounds of {REQUESTS} requests (p50), wrk -t1 -c32 -d{DURATION}")
    print()
    print("| Tenant policies | Ready after (compile) | RSS | Evaluation p50, new inputs | Ratio to the first | /healthz p50 | Evaluations/s, new inputs | /healthz/s | Ratio |")
    print("|---|---|---|---|---|---|---|---|---|")
    for n, ready, rss, p50, floor, rates in rows:
        rate = "n/a (no wrk)" if rates is None else f"{rates[0]:.0f}"
        healthz = "n/a" if rates is None else f"{rates[1]:.0f}"
        ratio = "" if rates is None or rates[1] == 0 else f"{rates[0] / rates[1]:.2f}"
        print(f"| {n:,} | {ready:.2f} s | {rss / 1024:.1f} MiB | {p50:.0f} µs | {p50 / base:.2f} | {floor:.0f} µs | {rate} | {healthz} | {ratio} |")
    shutil.rmtree(WORK, ignore_errors=True)


if __name__ == "__main__":
    main()
