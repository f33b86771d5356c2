#!/usr/bin/env bash
# The gateway tests (tests/gateways, docs/gateways.md): Warden's /v1/forward-auth behind a real
# nginx (auth_request) and a real Caddy (forward_auth) in front of the example FastAPI app.
# Installs nginx and caddy with apt-get when they are missing (as root, or through `sudo -n`),
# without letting the packages start a system nginx or Caddy on ports 80/443. When they cannot
# be installed the tests are skipped with a message, except under CI=true, where that is a
# failure. Called by scripts/test-python.sh; can be run alone once that script made the venv.
#
# WARDEN_BIN: the warden binary (default: target/debug/warden).
# PY: the interpreter with the SDK's test dependencies (default: the SDK's venv).
set -euo pipefail
cd "$(dirname "$0")/.."
repo_root=$(pwd)

export WARDEN_BIN="${WARDEN_BIN:-$repo_root/target/debug/warden}"
py="${PY:-$repo_root/clients/python/.venv/bin/python}"
if [[ ! -x "$py" ]]; then
  echo "error: no Python at $py (run scripts/test-python.sh first, or set PY)" >&2
  exit 2
fi

# shellcheck source=lib/install-packages.sh
source scripts/lib/install-packages.sh

# Debian's `nginx` package has the auth_request module built in (nginx-light is a
# transitional package that pulls it in); Caddy 2.6 or newer has forward_auth.
missing_packages() {
  local missing=()
  command -v nginx >/dev/null 2>&1 || [[ -x /usr/sbin/nginx ]] || missing+=(nginx)
  command -v caddy >/dev/null 2>&1 || missing+=(caddy)
  echo "${missing[@]}"
}

missing=$(missing_packages)
if [[ -n $missing ]]; then
  echo "== installing $missing (apt-get, no service started)"
  # shellcheck disable=SC2086 # one word per package
  install_packages $missing || true
  missing=$(missing_packages)
fi
if [[ -n $missing ]]; then
  if [[ "${CI:-}" == "true" ]]; then
    echo "error: the gateway tests need $missing, which could not be installed (CI=true)" >&2
    exit 1
  fi
  echo "== gateway tests SKIPPED: $missing not installed and not installable here" \
    "(apt-get install $missing, then bash scripts/test-gateways.sh)"
  exit 0
fi

echo "== ruff tests/gateways"
(cd tests/gateways && "$py" -m ruff check . && "$py" -m ruff format --check .)

echo "== pytest tests/gateways"
status=0
(cd tests/gateways && "$py" -m pytest -q -p no:cacheprovider) || status=$?
if [[ $status -eq 5 ]]; then
  echo "error: pytest found no tests in tests/gateways" >&2
fi
exit "$status"
