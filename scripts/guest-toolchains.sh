#!/usr/bin/env bash
# Installs, idempotently, the toolchains that build the non-Rust guest
# providers, under target/guest-tools (nothing global but Debian packages):
#   Python:     componentize-py, pinned in guest-examples/templates/python/requirements.txt
#   JavaScript: jco (StarlingMonkey), pinned in guest-examples/templates/js/package(-lock).json,
#               installed into that directory's node_modules
#   C:          Debian's clang-19, lld-19, wasi-libc and libclang-rt-19-dev-wasm32 (apt)
#   PostgreSQL: Debian's postgresql (apt), for the postgres provider's tests
# A second run changes nothing and takes about a second.
set -euo pipefail
cd "$(dirname "$0")/.."
tools="target/guest-tools"
mkdir -p "$tools"

# --- Python -----------------------------------------------------------------
py="$tools/python"
want="$(sed -n 's/^componentize-py==//p' guest-examples/templates/python/requirements.txt)"
if ! "$py/bin/componentize-py" --version 2>/dev/null | grep -qx "componentize-py $want"; then
  if ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
    # Debian splits venv out of python3.
    apt-get update -qq && apt-get install -y -qq python3-venv
  fi
  python3 -m venv "$py"
  "$py/bin/pip" install --quiet --disable-pip-version-check \
    -r guest-examples/templates/python/requirements.txt
fi
echo "python: $("$py/bin/componentize-py" --version)"

# --- JavaScript -------------------------------------------------------------
js="guest-examples/templates/js"
lock_sum="$(sha256sum "$js/package-lock.json" | cut -d' ' -f1)"
if [ "$(cat "$js/node_modules/.tapedeck-lock-sha256" 2>/dev/null)" != "$lock_sum" ]; then
  command -v npm >/dev/null || { echo "npm is missing: install Node.js 20 (apt-get install nodejs npm)" >&2; exit 1; }
  # `npm install` with the committed lock installs exactly the locked
  # versions and leaves the lock unchanged. (`npm ci` refuses this lock: the
  # registry it was made with has no entries for other platforms' optional
  # binaries, which `npm ci` wants listed.)
  (cd "$js" && npm install --no-audit --no-fund --loglevel=error)
  echo "$lock_sum" > "$js/node_modules/.tapedeck-lock-sha256"
fi
echo "javascript: jco $("$js/node_modules/.bin/jco" --version)"

# --- C ----------------------------------------------------------------------
# Debian's clang and wasi-libc (WASI preview 1; the build adds the adapter).
c_packages="clang-19 lld-19 wasi-libc libclang-rt-19-dev-wasm32"
c_installed() {
  [ "$(dpkg-query -W -f='${Status}\n' $c_packages 2>/dev/null | grep -c '^install ok installed$')" -eq 4 ]
}
if ! c_installed; then
  as_root=""
  [ "$(id -u)" -eq 0 ] || as_root="sudo"
  $as_root apt-get update -qq && $as_root apt-get install -y -qq $c_packages
fi
echo "c: $(clang-19 --version | head -1)"

# --- PostgreSQL (not a guest toolchain: the postgres provider's tests start
# a throwaway server of their own on 127.0.0.1) ------------------------------
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  as_root=""
  [ "$(id -u)" -eq 0 ] || as_root="sudo"
  $as_root apt-get update -qq && $as_root apt-get install -y -qq postgresql
fi
echo "postgresql: $(ls -d /usr/lib/postgresql/*/bin | tail -1)"
scripts/mcp-sdks.sh  # the official MCP SDKs (Python, TypeScript) that tests/all/mcp_clients.rs drives tapedeck with
