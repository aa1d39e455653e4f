#!/bin/sh
# Longer fuzzing than the CI smoke run: every target (or those named) for SECONDS each,
# a random seed per run, grown corpora kept in build-fuzz/corpus/<target> between runs.
# Crash inputs land in build-fuzz/crashes/; add each one, fixed, to
# tests/fuzz/corpus/<target>/ as a named regression.
#   contrib/fuzz.sh [SECONDS] [target...]
set -eu
cd "$(dirname "$0")/.."
seconds=${1:-600}
[ $# -gt 0 ] && shift
[ -d build-fuzz ] || CC=clang meson setup build-fuzz -Dfuzz=true --buildtype=debugoptimized >/dev/null
ninja -C build-fuzz >/dev/null
export LSAN_OPTIONS="suppressions=$(pwd)/tests/lsan.supp"
mkdir -p build-fuzz/crashes
targets=${*:-$(cd build-fuzz/tests/fuzz && ls fuzz_* | grep -v -e _replay -e '\.p$')}
status=0
for name in $targets; do
	mkdir -p "build-fuzz/corpus/$name"
	leaks=1
	[ "$name" = fuzz_capture ] && leaks=0
	echo "== $name ($seconds s)"
	build-fuzz/tests/fuzz/"$name" -max_total_time="$seconds" -rss_limit_mb=2048 -max_len=262144 \
		-detect_leaks=$leaks -artifact_prefix="build-fuzz/crashes/$name-" \
		"build-fuzz/corpus/$name" "tests/fuzz/corpus/$name" >"build-fuzz/$name.log" 2>&1 || status=1
	sed -n '/^==[0-9]*==ERROR/,/^SUMMARY/p' "build-fuzz/$name.log" | head -40
	tail -2 "build-fuzz/$name.log"
done
ls build-fuzz/crashes
exit $status
