#!/usr/bin/env bash
# The Python SDK's checks: mypy --strict, ruff, and pytest (the SDK's unit tests and its live
# tests, the example app against the real `warden serve`, the fault tests in tests/reliability,
# then the gateway tests in tests/gateways through scripts/test-gateways.sh). Exits
# non-zero on any failure, including a pytest run that collected no test. Run from anywhere:
# `bash scripts/test-python.sh`.
#
# The SDK's job tests (clients/python/tests/test_jobs_live.py: a Celery and an arq worker) need
# `redis-server`. Under CI=true it is installed with apt-get when missing (as root, or through
# `sudo -n`; no service started), and a failed install fails the run. Elsewhere a missing
# redis-server is not installed: those tests are skipped, with a message here and in pytest's.
#
# WARDEN_BIN: the warden binary the end-to-end tests start (default: target/debug/warden).
# PYTHON: the interpreter that creates the venv (default: python3.11, else python3).
set -euo pipefail
cd "$(dirname "$0")/.."
repo_root=$(pwd)

export WARDEN_BIN="${WARDEN_BIN:-$repo_root/target/debug/warden}"
if [[ ! -x "$WARDEN_BIN" ]]; then
  echo "error: no warden binary at $WARDEN_BIN (cargo build -p warden, or set WARDEN_BIN)" >&2
  exit 2
fi

python="${PYTHON:-$(command -v python3.11 || command -v python3)}"
venv="$repo_root/clients/python/.venv"
if [[ ! -x "$venv/bin/python" ]]; then
  echo "== creating $venv"
  "$python" -m venv "$venv"
fi
py="$venv/bin/python"

echo "== pip install (SDK with test extras, example requirements)"
"$py" -m pip install --quiet --disable-pip-version-check \
  -e "clients/python[test]" -r examples/fastapi-docs/requirements.txt

echo "== mypy --strict (warden package)"
(cd clients/python && "$py" -m mypy --strict src)

echo "== ruff"
(cd clients/python && "$py" -m ruff check . && "$py" -m ruff format --check .)
(cd examples/fastapi-docs && "$py" -m ruff check . && "$py" -m ruff format --check .)
(cd tests/reliability && "$py" -m ruff check . && "$py" -m ruff format --check .)

# shellcheck source=lib/install-packages.sh
source scripts/lib/install-packages.sh
redis_server_present() {
  command -v redis-server >/dev/null 2>&1 || [[ -x /usr/bin/redis-server ]]
}
if ! redis_server_present; then
  if [[ "${CI:-}" == "true" ]]; then
    echo "== installing redis-server for the SDK's job tests (apt-get, no service started)"
    install_packages redis-server || true
    if ! redis_server_present; then
      echo "error: the SDK's job tests need redis-server, which could not be installed (CI=true)" >&2
      exit 1
    fi
  else
    echo "== the SDK's Celery and arq job tests will be SKIPPED: redis-server is not installed" \
      "(apt-get install redis-server, then run this script again)"
  fi
fi

# pytest exits 5 when it collected nothing: that is a failure here, like any other non-zero.
run_pytest() {
  local dir=$1
  echo "== pytest $dir"
  local status=0
  (cd "$dir" && "$py" -m pytest -q -p no:cacheprovider) || status=$?
  if [[ $status -eq 5 ]]; then
    echo "error: pytest found no tests in $dir" >&2
  fi
  return "$status"
}
run_pytest clients/python
run_pytest examples/fastapi-docs
# The fault tests (issue #22, docs/reliability.md): the real warden under load while its store,
# IdP, decision log or policy files fail; a PostgreSQL of their own when the server binaries
# are installed (skipped otherwise); about a minute and a half.
run_pytest tests/reliability
# Warden's /v1/forward-auth behind a real nginx and a real Caddy (docs/gateways.md); installs
# them with apt-get when missing (skipped with a message if it cannot, a failure under CI=true).
PY="$py" bash scripts/test-gateways.sh
echo "== python: all checks passed"
