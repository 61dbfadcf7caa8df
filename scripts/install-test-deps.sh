#!/usr/bin/env bash
# Installs what the test suite drives for real: nginx, curl and openssl (Debian packages).
# Idempotent: installs only what is missing. Run as root (or with sudo available).
set -euo pipefail

apt_packages=()
command -v nginx >/dev/null 2>&1 || apt_packages+=(nginx)
command -v curl >/dev/null 2>&1 || apt_packages+=(curl)
command -v openssl >/dev/null 2>&1 || apt_packages+=(openssl)
command -v update-ca-certificates >/dev/null 2>&1 || apt_packages+=(ca-certificates)

if [ ${#apt_packages[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "install-test-deps: installing ${apt_packages[*]}"
  # Packages must not start system daemons (nginx on port 80): tests start their own.
  added_policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
    $sudo chmod +x /usr/sbin/policy-rc.d
    added_policy=1
  fi
  trap '[ -n "$added_policy" ] && $sudo rm -f /usr/sbin/policy-rc.d' EXIT
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${apt_packages[@]}"
fi

for component in rustfmt clippy; do
  if ! cargo "${component/rustfmt/fmt}" --version >/dev/null 2>&1; then
    if command -v rustup >/dev/null 2>&1; then
      rustup component add "$component"
    else
      echo "install-test-deps: cargo $component is missing and rustup is not available" >&2
      exit 1
    fi
  fi
done

echo "install-test-deps: nginx $(nginx -v 2>&1 | sed 's/.*\///'), $(curl --version | head -1 | cut -d' ' -f1-2), $(openssl version | cut -d' ' -f1-2)"
