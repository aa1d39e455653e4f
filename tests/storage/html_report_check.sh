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
timeout 120 "$chrome" $flags --enable-logging=stderr --v=0 --window-size=1000,9000 \
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

# Layout, measured in the rendered page: no two labels of one chart overlap (text bounding
# boxes), every section is there, and the critical/high card equals the rows listed plus
# the "N more" line. The report itself has no script: a copy gets a measuring one.
layout_check() {
	html=$1
	name=$2
	sed 's#</body>#<script>\
const bad = [];\
document.querySelectorAll("svg").forEach((svg, si) => {\
  const r = [...svg.querySelectorAll("text")].map(t => [t.textContent, t.getBoundingClientRect()]);\
  for (let i = 0; i < r.length; i++) for (let j = i + 1; j < r.length; j++) {\
    const a = r[i][1], b = r[j][1];\
    if (a.width \&\& b.width \&\& a.left < b.right - 1 \&\& b.left < a.right - 1 \&\& a.top < b.bottom - 1 \&\& b.top < a.bottom - 1)\
      bad.push(si + ":" + r[i][0] + "/" + r[j][0]);\
  }\
});\
const h2 = [...document.querySelectorAll("h2")].map(h => h.textContent.replace(/ *\\(.*/, ""));\
const want = ["Findings by severity over time", "Findings by kind", "Most severe findings", "Top principals", "New query shapes", "Failed logins", "Blind spots", "Workload"];\
const missing = want.filter(w => !h2.some(h => h.startsWith(w)));\
const card = [...document.querySelectorAll(".card")].find(c => c.textContent.includes("critical + high"));\
const ch = card ? parseInt(card.querySelector(".v").textContent) : -1;\
const rows = document.querySelectorAll("td.sev-critical, td.sev-high").length;\
const tbl = [...document.querySelectorAll("h2")].find(h => h.textContent.startsWith("Most severe"));\
let more = 0, el = tbl;\
while ((el = el.nextElementSibling) \&\& el.tagName !== "H2") { const m = /([0-9]+) more/.exec(el.textContent); if (el.className === "more" \&\& m) more = parseInt(m[1]); }\
const pre = document.createElement("pre"); pre.id = "layout";\
pre.textContent = "LAYOUT overlaps=" + bad.length + " missing=" + missing.join(",") + " crit_high=" + ch + " listed=" + rows + " more=" + more + " " + bad.slice(0, 5).join(" ");\
document.body.appendChild(pre);\
</script></body>#' "$html" >"$out/layout-$name.html"
	# shellcheck disable=SC2086
	timeout 120 "$chrome" $flags --dump-dom "file://$out/layout-$name.html" 2>/dev/null |
		grep -o 'LAYOUT overlaps=[0-9][^<]*' | tail -1 >"$out/layout-$name.txt" || true
	line=$(cat "$out/layout-$name.txt")
	echo "$name: $line"
	case $line in
	"LAYOUT overlaps=0 missing= "*) ;;
	*) echo "layout check failed for $name" >&2; return 1 ;;
	esac
	ch=$(echo "$line" | sed 's/.*crit_high=\([0-9-]*\).*/\1/')
	listed=$(echo "$line" | sed 's/.*listed=\([0-9]*\).*/\1/')
	more=$(echo "$line" | sed 's/.*more=\([0-9]*\).*/\1/')
	# the list holds the most severe first: critical/high rows are listed or counted in "more"
	if [ "$ch" -gt "$listed" ] && [ "$more" -lt $((ch - listed)) ]; then
		echo "$name: $ch critical/high findings, $listed listed and only $more more" >&2
		return 1
	fi
}
layout_check "$out/report.html" day
# a long window: month buckets, the case whose labels used to overlap
"$report" report -d "$out/demo.db" --last 900d --format html -o "$out/report-long.html"
layout_check "$out/report-long.html" long
echo "screenshot: $out/report.png ($n charts rendered)"
