#!/usr/bin/env bash
# Fuzzes the running HTTP API from its own OpenAPI document with schemathesis (issue #22:
# "schemathesis against the served OpenAPI document finds 0 server errors").
#
#   bash scripts/schemathesis.sh
#
# What it does: installs schemathesis (PyPI, 4.x, pinned) into clients/python/.venv (made as
# scripts/test-python.sh makes it), writes a config into a temp dir that serves the example pack
# (examples/saas) with a SQLite store, a PEP credential, an admin credential (`warden admin
# init`), the HS256 dev issuer of examples/warden.dev.toml (for an end-user token minted with
# `warden token mint`), `[tokens]` with a service account (for /oauth2/*), and every
# `[rate_limits]` bucket at 0 (off, so fuzzing is never throttled into 429s). It starts
# `$WARDEN_BIN serve` on a free 127.0.0.1 port, waits for /readyz, then runs
# `schemathesis run http://127.0.0.1:PORT/openapi.json`: the document the binary serves.
#
# Credentials: OpenAPI-aware auth gives each operation the credential of the security scheme it
# declares: the PEP credential on /access/v1/*, the admin credential on /v1/admin/* and
# /v1/decisions/*, the end user's token (User::"acme/carol") on /v1/check, /v1/authenticate and
# /v1/filter, the service account's id and secret (HTTP Basic) on /oauth2/*. /v1/filter declares
# the end-user token first, so a second, 20 s run fuzzes it with the PEP credential (the
# `subject` form). The credential is never itself fuzzed (--generation-with-security-parameters
# false: otherwise half the requests are 401s that reach nothing); the ignored_auth check still
# sends each operation without it. scripts/schemathesis_hooks.py stops schemathesis from revoking
# or rotating its own admin credential, or disabling or deleting its service account, which it
# otherwise does within seconds (it reads their ids from list answers), leaving the rest of the
# run to 401s. Values the pack knows (tenants, entity types and ids, actions, Cedar uids) are
# mixed into half of the generated values of the fields that take them, so requests reach the
# decision, the tenant guard and the search and filter plans instead of stopping at "unknown
# action".
#
# Checks: schemathesis runs all its default checks (not_a_server_error, status code, content
# type, header and response schema conformance, positive_data_acceptance,
# negative_data_rejection, missing_required_header, unsupported_method, use_after_free,
# ensure_resource_availability, ignored_auth, …) with --continue-on-failure, so a conformance
# failure never ends the exploration of an operation before a server error could be found.
# Only these fail the script (exit 1); what the other checks find is printed and does not (the
# document and the server disagree there, and the document is the one to fix first):
#   - any response with a 5xx status, in any phase, whichever check saw it (a 503 included:
#     nothing here makes the store, the issuers or the decision log unavailable, so a 503 is a
#     bug as much as a 500);
#   - a request that got no response (connection refused or reset, a timeout): the server
#     crashed, dropped the connection (a panic in a handler) or hung;
#   - a server that is no longer running at the end, or a `panicked` line in its log;
#   - an operation schemathesis could not test (the document is invalid there, e.g. a path
#     parameter it does not declare), or a run that did not complete: a pass must mean every
#     documented operation was fuzzed.
# Each 5xx is printed with a curl command that repeats it (credentials as $WARDEN_PEP,
# $WARDEN_ADMIN, $WARDEN_USER_TOKEN, $WARDEN_SA_ID, $WARDEN_SA_SECRET: this run's are gone with
# its server, so make your own the same way), the answer, and the server's ERROR log lines.
# The schemathesis output is shown with these secrets masked the same way.
#
# Budget: a fixed seed, at most 25 examples per operation and phase, 120 s for the main run
# (fuzzing and the stateful phase repeat until it is spent) and 20 s for the PEP filter run;
# the whole script takes about 2.5 minutes on 2 cores with a debug binary. One worker: with more,
# the order of requests, and so the store's state, varies between runs. More workers do find
# bugs that need two requests at once (SCHEMATHESIS_WORKERS=2), so try it when hunting, not in CI.
#
# Environment (all optional):
#   WARDEN_BIN                the binary (default: target/debug/warden)
#   PYTHON                    the interpreter that creates the venv (default: python3.11, else python3)
#   SCHEMATHESIS_REQUIREMENT  the pip requirement (default: schemathesis==4.32.5)
#   SCHEMATHESIS_SEED         the seed (default: 22)
#   SCHEMATHESIS_MAX_EXAMPLES examples per operation and phase (default: 25)
#   SCHEMATHESIS_MAX_TIME     seconds for the main run (default: 120)
#   SCHEMATHESIS_WORKERS      concurrent workers (default: 1)
#   SCHEMATHESIS_SCHEMA       fuzz from this OpenAPI file instead of the served /openapi.json
#                             (to try an edited crates/warden-server/openapi.json before a rebuild)
#   SCHEMATHESIS_KEEP         a directory to copy the run into (config, server log, reports: these
#                             hold the run's throwaway credentials unmasked), for CI artifacts
#
# CI-safe: no terminal or stdin needed; the server (only the one started here, by its pid) is
# stopped on exit, and the temp dir removed.
set -euo pipefail
cd "$(dirname "$0")/.."
repo_root=$(pwd)

warden_bin="${WARDEN_BIN:-$repo_root/target/debug/warden}"
if [[ ! -x "$warden_bin" ]]; then
  echo "error: no warden binary at $warden_bin (cargo build -p warden, or set WARDEN_BIN)" >&2
  exit 2
fi
seed="${SCHEMATHESIS_SEED:-22}"
max_examples="${SCHEMATHESIS_MAX_EXAMPLES:-25}"
max_time="${SCHEMATHESIS_MAX_TIME:-120}"
pep_max_time=20
workers="${SCHEMATHESIS_WORKERS:-1}"
requirement="${SCHEMATHESIS_REQUIREMENT:-schemathesis==4.32.5}"
schema_file="${SCHEMATHESIS_SCHEMA:-}"
if [[ -n "$schema_file" ]]; then
  schema_file=$(cd "$(dirname "$schema_file")" && pwd)/$(basename "$schema_file")
fi

python="${PYTHON:-$(command -v python3.11 || command -v python3)}"
venv="$repo_root/clients/python/.venv"
if [[ ! -x "$venv/bin/python" ]]; then
  echo "== creating $venv"
  "$python" -m venv "$venv"
fi
py="$venv/bin/python"
echo "== pip install $requirement"
"$py" -m pip install --quiet --disable-pip-version-check "$requirement" </dev/null
schemathesis="$venv/bin/schemathesis"

work=$(mktemp -d "${TMPDIR:-/tmp}/warden-schemathesis.XXXXXX")
server_pid=""
cleanup() {
  local status=$?
  if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
    kill "$server_pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  if [[ -n "${SCHEMATHESIS_KEEP:-}" ]]; then
    mkdir -p "$SCHEMATHESIS_KEEP"
    cp -r "$work"/. "$SCHEMATHESIS_KEEP"/ 2>/dev/null || true
    echo "== kept the run in $SCHEMATHESIS_KEEP"
  fi
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

random_hex() { head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n'; }

port=$("$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
export WARDEN_DEV_HS256_SECRET WARDEN_TOKEN_KEY WARDEN_PEP
WARDEN_DEV_HS256_SECRET=$(random_hex)
WARDEN_TOKEN_KEY=$(random_hex)
WARDEN_PEP="pep_$(random_hex)"
pep_digest=$(printf '%s' "$WARDEN_PEP" | sha256sum | cut -d' ' -f1)

config="$work/warden.toml"
cat >"$config" <<EOF
# Written by scripts/schemathesis.sh: the example pack on loopback, for fuzzing.
[server]
listen = "127.0.0.1:$port"

[policy]
dir = "$repo_root/examples/saas"
entities_file = "$repo_root/examples/saas/entities.json"
watch = false

[storage]
url = "sqlite://warden.db"

[peps]
credentials = ["sha256:$pep_digest"]

[[issuers]]
issuer = "https://dev.warden.local"
audiences = ["warden"]
algorithms = ["HS256"]
hs256_secret_env = "WARDEN_DEV_HS256_SECRET"

[issuers.claims]
tenant = "org_id"
roles = "roles"

[tokens]
issuer = "$base"
key_encryption_key_env = "WARDEN_TOKEN_KEY"

[audit]
dir = "audit"

[rate_limits]
token_per_minute = 0
admin_per_minute = 0
failed_auth_per_minute = 0
EOF

echo "== warden admin init"
admin_out=$("$warden_bin" admin init --config "$config" </dev/null)
export WARDEN_ADMIN
WARDEN_ADMIN=$(printf '%s\n' "$admin_out" | grep '^wdn_admin_' | head -1)
admin_id=$(printf '%s\n' "$admin_out" | grep -o 'adm_[0-9a-f]*' | head -1)
if [[ -z "$WARDEN_ADMIN" || -z "$admin_id" ]]; then
  echo "error: warden admin init printed no adm_ id or wdn_admin_ secret" >&2
  exit 1
fi
export WARDEN_USER_TOKEN
WARDEN_USER_TOKEN=$("$warden_bin" token mint --config "$config" --issuer https://dev.warden.local \
  --sub carol --claim org_id=acme --ttl 3600 </dev/null)

echo "== warden serve on $base ($warden_bin)"
(cd "$work" && exec "$warden_bin" serve --config "$config" --log-format json >"$work/server.log" 2>&1 </dev/null) &
server_pid=$!
ready=""
for _ in $(seq 1 150); do
  if ! kill -0 "$server_pid" 2>/dev/null; then
    echo "error: warden serve exited during startup:" >&2
    tail -n 30 "$work/server.log" >&2
    exit 1
  fi
  if curl -fsS -o /dev/null --max-time 2 "$base/readyz" 2>/dev/null; then
    ready=1
    break
  fi
  sleep 0.2
done
if [[ -z "$ready" ]]; then
  echo "error: $base/readyz did not answer 200 within 30 s:" >&2
  curl -sS --max-time 2 "$base/readyz" >&2 || true
  tail -n 30 "$work/server.log" >&2
  exit 1
fi

# A service account in acme, so /oauth2/token and /oauth2/revoke get past client authentication.
sa_answer=$(curl -fsS --max-time 10 -X POST "$base/v1/admin/tenants/acme/service-accounts" \
  -H "Authorization: Bearer $WARDEN_ADMIN" -H 'content-type: application/json' \
  -d '{"name": "schemathesis", "owner": "User::\"acme/alice\"", "purpose": "fuzzing",
       "scopes": ["documents:read"], "expires_in_seconds": 86400}')
json_field() { "$py" -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }
export WARDEN_SA_ID WARDEN_SA_SECRET
WARDEN_SA_ID=$(printf '%s' "$sa_answer" | json_field client_id)
WARDEN_SA_SECRET=$(printf '%s' "$sa_answer" | json_field client_secret)
sa_credential_id=$(printf '%s' "$sa_answer" | json_field credential_id)

# schemathesis_hooks.py keeps these usable to the end of the run (see its docstring).
export WARDEN_PROTECTED_IDS="$admin_id $WARDEN_SA_ID $sa_credential_id"
export SCHEMATHESIS_HOOKS=schemathesis_hooks
export PYTHONPATH="$repo_root/scripts${PYTHONPATH:+:$PYTHONPATH}"

# Secrets stay out of the config files: schemathesis reads ${VAR} from the environment.
cat >"$work/schemathesis.toml" <<'EOF'
[auth.openapi.pepCredential]
bearer = "${WARDEN_PEP}"
[auth.openapi.adminCredential]
bearer = "${WARDEN_ADMIN}"
[auth.openapi.endUserToken]
bearer = "${WARDEN_USER_TOKEN}"
[auth.openapi.oauthClientBasic]
username = "${WARDEN_SA_ID}"
password = "${WARDEN_SA_SECRET}"
EOF
cat >"$work/schemathesis-pep.toml" <<'EOF'
[auth.openapi.pepCredential]
bearer = "${WARDEN_PEP}"
EOF
# Names the example pack knows, mixed into about half of the generated values of these fields
# (schema-valid ones in positive cases only), so requests get past "unknown action" and "unknown
# entity type" to the decision, the tenant guard, search and filter plans, and real tenants.
cat >"$work/dictionaries.toml" <<'EOF'
[dictionaries.tenants]
values = ["acme", "globex", "operator", "public"]
[dictionaries.entity_types]
values = ["User", "Document", "Folder", "Group", "Role", "ServiceAccount", "Tenant"]
[dictionaries.entity_ids]
values = ["acme/alice", "acme/carol", "acme/erin", "globex/bob", "operator/sam", "acme/indexer",
          "acme/roadmap", "acme/salaries", "globex/roadmap", "public/handbook", "acme/contracts",
          "acme/legal", "acme", "globex", "admin", "viewer", "support", "carol"]
[dictionaries.resource_types]
values = ["Document", "Tenant"]
[dictionaries.actions]
values = ["read", "edit", "delete", "share", "list"]
[dictionaries.uids]
values = ['User::"acme/carol"', 'User::"carol"', 'User::"acme/alice"', 'Role::"admin"',
          'Role::"editor"', 'Role::"viewer"', 'Group::"acme/legal"', 'ServiceAccount::"acme/indexer"',
          'Document::"acme/roadmap"', 'alice']
[dictionaries.statuses]
values = ["active", "disabled", "deleted"]
[dictionaries.revocation_kinds]
values = ["token", "session", "subject", "client", "key"]
[dictionaries.issuers]
values = ["https://dev.warden.local"]

[parameters]
"path.tenant" = { dictionary = "tenants", probability = 0.6 }
"path.entity_type" = { dictionary = "entity_types", probability = 0.5 }
"body.tenant" = { dictionary = "tenants", probability = 0.5 }
"body.subject.type" = { dictionary = "entity_types", probability = 0.5 }
"body.subject.id" = { dictionary = "entity_ids", probability = 0.5 }
"body.resource.type" = { dictionary = "entity_types", probability = 0.5 }
"body.resource.id" = { dictionary = "entity_ids", probability = 0.5 }
"body.resource_type" = { dictionary = "resource_types", probability = 0.5 }
"body.action" = { dictionary = "actions", probability = 0.5 }
"body.action.name" = { dictionary = "actions", probability = 0.5 }
"body.evaluations[*].subject.type" = { dictionary = "entity_types", probability = 0.5 }
"body.evaluations[*].subject.id" = { dictionary = "entity_ids", probability = 0.5 }
"body.evaluations[*].resource.type" = { dictionary = "entity_types", probability = 0.5 }
"body.evaluations[*].resource.id" = { dictionary = "entity_ids", probability = 0.5 }
"body.evaluations[*].action.name" = { dictionary = "actions", probability = 0.5 }
"body.principal" = { dictionary = "uids", probability = 0.5 }
"body.role" = { dictionary = "uids", probability = 0.5 }
"body.owner" = { dictionary = "uids", probability = 0.5 }
"body.status" = { dictionary = "statuses", probability = 0.5 }
"body.kind" = { dictionary = "revocation_kinds", probability = 0.5 }
"body.issuer" = { dictionary = "issuers", probability = 0.5 }
EOF
cat "$work/dictionaries.toml" >>"$work/schemathesis.toml"
cat "$work/dictionaries.toml" >>"$work/schemathesis-pep.toml"

location="$base/openapi.json"
url_args=()
if [[ -n "$schema_file" ]]; then
  location="$schema_file"
  url_args=(--url "$base")
fi

# Runs schemathesis once; its console output is shown with this run's secrets masked.
run_schemathesis() {
  local name=$1 config_file=$2 budget=$3
  shift 3
  echo "== schemathesis ($name, ${budget} s): $location"
  local status=0
  (cd "$work" && timeout --signal=INT --kill-after=15 "$((budget + 60))" \
    "$schemathesis" --config-file "$config_file" run "$location" "${url_args[@]}" \
    --seed "$seed" --max-examples "$max_examples" --max-time "$budget" --workers "$workers" \
    --continue-on-failure --generation-with-security-parameters false \
    --generation-database none --output-sanitize false --request-timeout 15 --no-color \
    --suppress-health-check all --report json,ndjson --report-dir "$work/report-$name" "$@" \
    </dev/null) >"$work/schemathesis-$name.out" 2>&1 || status=$?
  "$py" "$repo_root/scripts/schemathesis_gate.py" mask <"$work/schemathesis-$name.out"
  echo "== schemathesis ($name) exited with $status"
}

started=$SECONDS
run_schemathesis all "$work/schemathesis.toml" "$max_time"
run_schemathesis filter-pep "$work/schemathesis-pep.toml" "$pep_max_time" --include-path /v1/filter
echo "== schemathesis took $((SECONDS - started)) s"

server_alive=1
kill -0 "$server_pid" 2>/dev/null || server_alive=0
"$py" "$repo_root/scripts/schemathesis_gate.py" gate \
  --server-log "$work/server.log" --server-alive "$server_alive" \
  "$work/report-all" "$work/report-filter-pep"
