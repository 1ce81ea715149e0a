#!/usr/bin/env bash
# Runs every Fuzz target of every package for $1 (default 30s) each, one at a time.
set -euo pipefail
cd "$(dirname "$0")/.."
t=${1:-30s}
fail=0
for pkg in $(go list ./...); do
  dir=$(go list -f '{{.Dir}}' "$pkg")
  for f in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/func //' | sort -u); do
    echo "fuzz: $pkg $f ($t)"
    if ! go test -run='^$' -fuzz="^${f}\$" -fuzztime="$t" "$pkg" >/tmp/fuzz-$f.log 2>&1; then
      echo "fuzz: FAILED $pkg $f — see /tmp/fuzz-$f.log"; tail -20 /tmp/fuzz-$f.log; fail=1
    fi
  done
done
exit $fail
