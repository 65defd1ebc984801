#!/usr/bin/env bash
# Installs, idempotently, the official MCP SDKs that tests/all/mcp_clients.rs
# drives `tapedeck record` with (clients and servers in tests/mcp-sdk/):
#   Python:     `mcp`, pinned with its whole closure in tests/mcp-sdk/requirements.txt,
#               into the venv target/guest-tools/mcp-python
#   TypeScript: @modelcontextprotocol/sdk, pinned in tests/mcp-sdk/package(-lock).json,
#               installed with `npm ci` into tests/mcp-sdk/node_modules
# Each part is redone only when its pin file changed (a checksum stamp), so a
# second run changes nothing and takes well under a second.
# Called by scripts/guest-toolchains.sh (the README's test command, .ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."
sdk="tests/mcp-sdk"

# --- Python -----------------------------------------------------------------
venv="target/guest-tools/mcp-python"
req_sum="$(sha256sum "$sdk/requirements.txt" | cut -d' ' -f1)"
if [ "$(cat "$venv/.tapedeck-requirements-sha256" 2>/dev/null)" != "$req_sum" ] \
  || ! [ -x "$venv/bin/python" ]; then
  if ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
    # Debian splits venv out of python3.
    as_root=""
    [ "$(id -u)" -eq 0 ] || as_root="sudo"
    $as_root apt-get update -qq && $as_root apt-get install -y -qq python3-venv
  fi
  rm -rf "$venv"
  mkdir -p "$(dirname "$venv")"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$sdk/requirements.txt"
  echo "$req_sum" > "$venv/.tapedeck-requirements-sha256"
fi
echo "mcp-python: mcp $("$venv/bin/python" -c 'from importlib.metadata import version; print(version("mcp"))')"

# --- TypeScript -------------------------------------------------------------
lock_sum="$(sha256sum "$sdk/package-lock.json" | cut -d' ' -f1)"
if [ "$(cat "$sdk/node_modules/.tapedeck-lock-sha256" 2>/dev/null)" != "$lock_sum" ]; then
  command -v npm >/dev/null || { echo "npm is missing: install Node.js 20 (apt-get install nodejs npm)" >&2; exit 1; }
  # `npm ci` installs exactly the locked versions (integrity checked) and
  # never rewrites the lock; it fails if package.json and the lock disagree.
  (cd "$sdk" && npm ci --no-audit --no-fund --loglevel=error)
  echo "$lock_sum" > "$sdk/node_modules/.tapedeck-lock-sha256"
fi
echo "mcp-typescript: @modelcontextprotocol/sdk $(node -p 'require("./'"$sdk"'/node_modules/@modelcontextprotocol/sdk/package.json").version')"
