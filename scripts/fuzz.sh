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
    ok=1
    go test -run='^$' -fuzz="^${f}\$" -fuzztime="$t" "$pkg" >/tmp/fuzz-$f.log 2>&1 || ok=0
    # On a loaded machine the fuzz coordinator can miss its own deadline at the end of the
    # run ("context deadline exceeded" with no failing input): that is no finding, run again.
    if [ $ok = 0 ] && grep -q "context deadline exceeded" /tmp/fuzz-$f.log && ! grep -q "Failing input" /tmp/fuzz-$f.log; then
      echo "fuzz: $f hit the coordinator deadline with no finding; running again"
      go test -run='^$' -fuzz="^${f}\$" -fuzztime="$t" "$pkg" >/tmp/fuzz-$f.log 2>&1 && ok=1
    fi
    if [ $ok = 0 ]; then
      echo "fuzz: FAILED $pkg $f — see /tmp/fuzz-$f.log"; tail -20 /tmp/fuzz-$f.log; fail=1
    fi
  done
done
exit $fail
