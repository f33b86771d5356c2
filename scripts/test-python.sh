#!/usr/bin/env bash
# The Python SDK's checks: mypy --strict, ruff, and pytest (the SDK's unit tests, the example
# app against the real `warden serve`, the fault tests in tests/reliability, then the gateway
# tests in tests/gateways through scripts/test-gateways.sh). Exits
# non-zero on any failure, including a pytest run that collected no test. Run from anywhere:
# `bash scripts/test-python.sh`.
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
