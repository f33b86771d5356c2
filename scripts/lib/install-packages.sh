# Sourced by the test scripts (scripts/test-gateways.sh, scripts/test-python.sh): install Debian
# packages a test suite needs, as root or through `sudo -n`, without letting them start a
# service. Defines `install_packages PACKAGE...`, which returns non-zero when it cannot (not
# root and no password-less sudo, no apt-get, or the install failed) and says why on stderr.

install_packages() {
  local -a sudo=()
  if [[ $(id -u) -ne 0 ]]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
      sudo=(sudo -n)
    else
      echo "note: not root and no password-less sudo: cannot install $*" >&2
      return 1
    fi
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "note: no apt-get: cannot install $*" >&2
    return 1
  fi
  # A package's maintainer scripts start its service through invoke-rc.d/deb-systemd-invoke,
  # which ask /usr/sbin/policy-rc.d first: 101 means "do not start". Put one in place for the
  # install when there is none (Docker images usually have one already), and take it away after.
  local guard=/usr/sbin/policy-rc.d own_guard=0
  if [[ ! -e $guard ]]; then
    printf '#!/bin/sh\n# scripts/lib/install-packages.sh: no service starts during this install\nexit 101\n' |
      "${sudo[@]}" tee "$guard" >/dev/null
    "${sudo[@]}" chmod 755 "$guard"
    own_guard=1
  fi
  local status=0
  export DEBIAN_FRONTEND=noninteractive
  if ! "${sudo[@]}" apt-get install -y --no-install-recommends "$@"; then
    "${sudo[@]}" apt-get update && "${sudo[@]}" apt-get install -y --no-install-recommends "$@" || status=$?
  fi
  if [[ $own_guard -eq 1 ]]; then
    "${sudo[@]}" rm -f "$guard"
  fi
  return "$status"
}
