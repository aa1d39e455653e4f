#!/bin/sh
# Install everything the tests need (build tools, Criterion, PostgreSQL 15, MariaDB,
# clients, tcpdump), build, and run every test suite: once normally and once under
# AddressSanitizer + UndefinedBehaviorSanitizer. Run as root on Debian 12.
set -eu
cd "$(dirname "$0")/.."
contrib/deps.sh test
# The conformance corpus lives beside the checkout; tests skip with a reason without it.
[ -d ../shared/corpus ] || echo "note: ../shared/corpus not found: conformance tests will be skipped"

log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
run_suite() {
	dir=$1
	shift
	[ -d "$dir" ] || meson setup "$dir" "$@" >/dev/null
	ninja -C "$dir" >/dev/null
	meson test -C "$dir" --print-errorlogs --num-processes 2 | tee -a "$log" || status=1
}

echo "== build and test (debugoptimized)"
run_suite build-test --buildtype=debugoptimized
echo "== build and test (ASan + UBSan)"
run_suite build-asan --buildtype=debug -Db_sanitize=address,undefined -Db_lundef=false

# One closing line over both runs, counted from meson's summaries.
ok=$(awk '/^Ok:/ {s += $2} END {print s + 0}' "$log")
fail=$(awk '/^(Fail|Unexpected Pass|Timeout):/ {s += $NF} END {print s + 0}' "$log")
skip=$(awk '/^Skipped:/ {s += $2} END {print s + 0}' "$log")
echo "tests: $ok passed, $fail failed, $skip skipped"
exit $status
