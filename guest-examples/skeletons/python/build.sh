#!/bin/sh
# Builds my-provider.wasm: installs the pinned componentize-py into .venv on
# the first run (or uses $COMPONENTIZE_PY if it is that version), then
# makes the component from src/ and wit/.
set -eu
cd "$(dirname "$0")"
want="componentize-py $(sed -n 's/^componentize-py==//p' requirements.txt)"
tool="${COMPONENTIZE_PY:-.venv/bin/componentize-py}"
if [ "$("$tool" --version 2>/dev/null)" != "$want" ]; then
  tool=.venv/bin/componentize-py
  if [ "$("$tool" --version 2>/dev/null)" != "$want" ]; then
    echo "installing $want into .venv" >&2
    python3 -m venv .venv
    .venv/bin/pip install --quiet --disable-pip-version-check -r requirements.txt
  fi
fi
# componentize-py packs every module on its search path: src/ holds only the
# provider's modules.
"$tool" -d wit -w provider componentize -p src app -o my-provider.wasm
echo "built my-provider.wasm; check it with: tapedeck provider test my-provider.wasm"
