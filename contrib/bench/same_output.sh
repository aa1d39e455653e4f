#!/bin/sh
# Prints one hash per capture of what dbtap stores for it, so a refactor can show
# "outputs byte-identical": run it before and after, then diff the two listings.
# usage: contrib/bench/same_output.sh BUILD_DIR > listing
# Reads every capture under tests/ and ../shared/corpus (skipped when absent).
set -eu
build=${1:?usage: same_output.sh BUILD_DIR}
bin=$build/capture/dbtap
[ -x "$bin" ] || { echo "same_output: no $bin" >&2; exit 2; }
today=$(date -u +%Y-%m-%d)   # wall-clock stamps are today's; packet times are not
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
list() {
    find tests -name '*.pcap' -o -name '*.pcapng' -o -name '*.pcap.gz'
    [ -d ../shared/corpus ] && find ../shared/corpus -name '*.pcap' -o -name '*.pcapng' -o -name '*.cap'
    true
}
# Wall-clock and run-scoped columns differ between any two runs; leave them out.
dump() {
    sqlite3 "$1" "SELECT name FROM sqlite_master WHERE type='table' AND name NOT IN ('runs','sqlite_sequence') ORDER BY name" |
    while read -r t; do
        echo "== $t"
        sqlite3 -header "$1" "SELECT * FROM \"$t\" ORDER BY 1" |
            sed -E "s/$today"'T[0-9:.]+Z?/W/g'
    done
}
list | sort | while read -r f; do
    rm -f "$tmp/o.db" "$tmp/o.json"
    case $f in *.gz) gzip -dc "$f" > "$tmp/in.pcap"; in=$tmp/in.pcap ;; *) in=$f ;; esac
    rc=0; "$bin" run -q -r "$in" -d "$tmp/o.db" --json "$tmp/o.json" >/dev/null 2>&1 || rc=$?
    h=$( { echo "rc=$rc"; [ -f "$tmp/o.db" ] && dump "$tmp/o.db"; [ -f "$tmp/o.json" ] && grep -v '"event_type":"run"' "$tmp/o.json" | sed -E "s/$today"'T[0-9:.]+Z?/W/g'; } | sha1sum | cut -c1-12)
    echo "$h $f"
done
