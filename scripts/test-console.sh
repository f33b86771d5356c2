#!/usr/bin/env bash
# The web console's browser tests (tests/console, issue #24): Playwright drives Debian's
# Chromium, headless, against the real `warden serve`, which the tests start. Installs chromium
# with apt-get when /usr/bin/chromium is missing (never a browser Playwright downloads), makes
# tests/console/.venv and pip-installs tests/console/requirements.txt into it, then runs pytest.
# Screenshots of every test land in $WARDEN_ARTIFACTS/console (default
# target/test-artifacts/console), with the server's log. Builds nothing: run `cargo build -p
# warden` (or `cargo test`) first.
#
# WARDEN_BIN: the warden binary (default: target/debug/warden).
# WARDEN_CHROMIUM: the browser (default: /usr/bin/chromium).
# PYTHON: the interpreter that creates the venv (default: python3.11, else python3).
set -euo pipefail
cd "$(dirname "$0")/.."
repo_root=$(pwd)

export WARDEN_BIN="${WARDEN_BIN:-$repo_root/target/debug/warden}"
if [[ ! -x "$WARDEN_BIN" ]]; then
  echo "error: no warden binary at $WARDEN_BIN (cargo build -p warden, or set WARDEN_BIN)" >&2
  exit 2
fi
export WARDEN_ARTIFACTS="${WARDEN_ARTIFACTS:-$repo_root/target/test-artifacts}"
export WARDEN_CHROMIUM="${WARDEN_CHROMIUM:-/usr/bin/chromium}"

if [[ ! -x "$WARDEN_CHROMIUM" ]]; then
  if [[ "$WARDEN_CHROMIUM" != /usr/bin/chromium ]]; then
    echo "error: no browser at WARDEN_CHROMIUM=$WARDEN_CHROMIUM" >&2
    exit 2
  fi
  sudo=()
  if [[ $(id -u) -ne 0 ]]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
      sudo=(sudo -n)
    else
      echo "error: /usr/bin/chromium is missing and this is not root (apt-get install chromium)" >&2
      exit 2
    fi
  fi
  echo "== installing chromium (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  if ! "${sudo[@]}" apt-get install -y --no-install-recommends chromium; then
    "${sudo[@]}" apt-get update
    "${sudo[@]}" apt-get install -y --no-install-recommends chromium
  fi
fi

python="${PYTHON:-$(command -v python3.11 || command -v python3)}"
venv="$repo_root/tests/console/.venv"
if [[ ! -x "$venv/bin/python" ]]; then
  echo "== creating $venv"
  "$python" -m venv "$venv"
fi
py="$venv/bin/python"

echo "== pip install (tests/console/requirements.txt)"
"$py" -m pip install --quiet --disable-pip-version-check -r tests/console/requirements.txt

echo "== ruff tests/console"
(cd tests/console && "$py" -m ruff check . && "$py" -m ruff format --check .)

# pytest exits 5 when it collected nothing: that is a failure here, like any other non-zero.
echo "== pytest tests/console"
status=0
(cd tests/console && "$py" -m pytest -q -p no:cacheprovider) || status=$?
if [[ $status -eq 5 ]]; then
  echo "error: pytest found no tests in tests/console" >&2
fi
echo "== screenshots in $WARDEN_ARTIFACTS/console"
exit "$status"
