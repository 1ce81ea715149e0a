#!/usr/bin/env bash
# The README's test command: install and start every service the tests need, then run all
# tests. A service that cannot start fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
scripts/deps.sh
scripts/pcscd.sh
export QUANCUN_SERVICES=1
go vet ./...
# -p 1 for packages that share pcscd's fixed readers is handled inside the tests; the
# timeout keeps a hung test from eating CI's budget.
go test -count=1 -timeout 15m ./... 2>&1 | tee "${TMPDIR:-/tmp}/quancun-test.log"
