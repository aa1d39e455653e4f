#!/bin/sh
# Renders the HTML report of a demo database in headless Chromium: the page must load with
# no console errors, and a screenshot is kept under the build dir for a human to look at.
# Usage (meson passes these): html_report_check.sh STORAGE_DEMO STORAGE_REPORT
set -eu
demo=$1
report=$2
out=${DBTAP_BUILD:-$PWD}/storage-report
mkdir -p "$out"
rm -f "$out"/demo.db "$out"/demo.db-wal "$out"/demo.db-shm

chrome=""
for c in chromium chromium-browser google-chrome; do
	if command -v "$c" >/dev/null 2>&1; then chrome=$c; break; fi
done

"$demo" "$out/demo.db" 30 40
"$report" report -d "$out/demo.db" --format html -o "$out/report.html"
"$report" report -d "$out/demo.db" --format text -o "$out/report.txt"
"$report" report -d "$out/demo.db" --format json -o "$out/report.json"
grep -q '<svg' "$out/report.html"
if grep -q -i -E '<script|src=|href=' "$out/report.html"; then
	echo "report.html is not self-contained or has script" >&2
	exit 1
fi

if [ -z "$chrome" ]; then
	echo "SKIP: chromium not installed (apt-get install chromium); HTML left at $out/report.html"
	exit 77
fi

profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
flags="--headless --no-sandbox --disable-gpu --no-first-run --disable-background-networking \
--disable-component-update --disable-sync --user-data-dir=$profile --hide-scrollbars"
rm -f "$out/report.png"
# shellcheck disable=SC2086
timeout 120 "$chrome" $flags --enable-logging=stderr --v=0 --window-size=1000,4800 \
	--screenshot="$out/report.png" "file://$out/report.html" >"$out/chromium.log" 2>&1 || true
if [ ! -s "$out/report.png" ]; then
	echo "chromium produced no screenshot; log:" >&2
	tail -20 "$out/chromium.log" >&2
	exit 1
fi
# console messages from the page are logged as CONSOLE(...) lines
if grep -E 'CONSOLE|Uncaught|ERROR:.*report\.html' "$out/chromium.log"; then
	echo "console errors while rendering report.html" >&2
	exit 1
fi
# the rendered DOM must contain the charts (dump-dom runs the page the same way)
# shellcheck disable=SC2086
timeout 120 "$chrome" $flags --dump-dom "file://$out/report.html" >"$out/dom.html" 2>/dev/null || true
n=$(grep -o '<svg' "$out/dom.html" | wc -l)
if [ "$n" -lt 6 ]; then
	echo "rendered DOM has $n charts, expected at least 6" >&2
	exit 1
fi
echo "screenshot: $out/report.png ($n charts rendered)"
