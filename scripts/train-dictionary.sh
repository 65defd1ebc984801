#!/usr/bin/env bash
# Trains a zstd dictionary for tapedeck's codec (host/store/src/codec/
# compress.rs) on real MCP traffic: the official Python SDK client
# (scripts/dictionary/corpus_client.py) talks to an SDK server
# (scripts/dictionary/corpus_server.py) through `tapedeck record`, both
# protocol eras; every recorded payload is one training sample.
#
#   scripts/train-dictionary.sh host/store/src/codec/dictionaries/mcp-2.dict
#
# A shipped dictionary never changes (tapes name it by id): write a new
# file with a new id, and add it last in compress.rs's DICTIONARIES.
# Needs ./scripts/guest-toolchains.sh (the SDK) and the zstd command.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: scripts/train-dictionary.sh OUTPUT.dict [SESSIONS]}
sessions=${2:-60}
py=$PWD/target/guest-tools/mcp-python/bin/python3
[ -x "$py" ] || { echo "the MCP Python SDK is not installed: run ./scripts/guest-toolchains.sh" >&2; exit 1; }
command -v zstd >/dev/null || { echo "the zstd command is missing: apt-get install zstd" >&2; exit 1; }
cargo build --locked -p tapedeck-cli
td=$PWD/target/debug/tapedeck
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/tapes" "$work/samples"
export HOME="$work" TAPEDECK_SPOOL_DIR="$work/spool"
unset XDG_DATA_HOME TAPEDECK_CONFIG TAPEDECK_PROVIDER TAPEDECK_TAPES_DIR
cd "$work"
"$py" "$OLDPWD/scripts/dictionary/corpus_client.py" --sessions "$sessions" \
  --command "[\"$td\",\"record\",\"--no-redact\",\"--\",\"$py\",\"$OLDPWD/scripts/dictionary/corpus_server.py\"]"
"$td" --json list --all | "$py" -c 'import json,sys; print("\n".join(t["id"] for t in json.load(sys.stdin)))' |
  while read -r id; do "$td" export "$id"; done |
  "$py" -c '
import json, sys
n = 0
for line in sys.stdin:
    rec = json.loads(line)
    if rec.get("type") != "frame":
        continue
    if "msg" in rec:
        data = json.dumps(rec["msg"], separators=(",", ":"), ensure_ascii=False).encode()
    elif "text" in rec:
        data = rec["text"].encode()
    else:
        continue
    with open(f"samples/{n:06d}", "wb") as f:
        f.write(data)
    n += 1
print(f"{n} samples", file=sys.stderr)
'
cd "$OLDPWD"
zstd --train -q -r "$work/samples" --maxdict="${DICT_SIZE:-16384}" -o "$out"
echo "wrote $out ($(wc -c <"$out") bytes)"
