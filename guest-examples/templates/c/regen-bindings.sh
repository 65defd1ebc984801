#!/usr/bin/env bash
# Regenerates gen/ (the C bindings of wit/'s `provider` world) with the same
# wit-bindgen C generator the test `c_bindings_are_current` checks against.
set -euo pipefail
cd "$(dirname "$0")/../../.."
TAPEDECK_REGENERATE_C_BINDINGS=1 cargo test -p tapedeck-tests --test all c_bindings
