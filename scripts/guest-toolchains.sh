#!/usr/bin/env bash
# Installs, idempotently, the toolchains that build the non-Rust guest
# providers, under target/guest-tools (nothing global but Debian packages):
#   Python: componentize-py, pinned in guest-examples/python-provider/requirements.txt
# A second run changes nothing and takes about a second.
set -euo pipefail
cd "$(dirname "$0")/.."
tools="target/guest-tools"
mkdir -p "$tools"

# --- Python -----------------------------------------------------------------
py="$tools/python"
want="$(sed -n 's/^componentize-py==//p' guest-examples/python-provider/requirements.txt)"
if ! "$py/bin/componentize-py" --version 2>/dev/null | grep -qx "componentize-py $want"; then
  if ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
    # Debian splits venv out of python3.
    apt-get update -qq && apt-get install -y -qq python3-venv
  fi
  python3 -m venv "$py"
  "$py/bin/pip" install --quiet --disable-pip-version-check \
    -r guest-examples/python-provider/requirements.txt
fi
echo "python: $("$py/bin/componentize-py" --version)"
