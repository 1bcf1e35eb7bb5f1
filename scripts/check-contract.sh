#!/usr/bin/env bash
# The contract cannot break silently: `buf breaking` (rules: buf.yaml, FILE) of proto/
#  1. against the committed baseline image, proto/contract-baseline.binpb, always;
#  2. against main, when this checkout is another branch (or a detached HEAD) and the repository
#     has a main branch: catches removing what was added after the baseline.
# A change that moves the baseline on purpose (`npm run contract:baseline`, see the README,
# "Changing the contract") is a reviewed breaking change: check 2 then only reports.
set -euo pipefail
cd "$(dirname "$0")/.."
BASELINE=proto/contract-baseline.binpb
BUF=node_modules/.bin/buf

"$BUF" breaking --against "$BASELINE"

branch=$(git rev-parse --abbrev-ref HEAD 2>/dev/null || echo "")
if [ "$branch" = main ] || ! git rev-parse --verify -q refs/heads/main >/dev/null; then
  exit 0
fi
# The baseline as main has it and as this checkout has it (committed or not).
if [ "$(git rev-parse -q --verify "main:$BASELINE" || true)" = "$(git hash-object "$BASELINE")" ]; then
  "$BUF" breaking --against ".git#branch=main"
else
  echo "contract: $BASELINE differs from main's: breaking changes against main are allowed in this change (review them):" >&2
  "$BUF" breaking --against ".git#branch=main" >&2 || true
fi
