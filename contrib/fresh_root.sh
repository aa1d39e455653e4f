#!/bin/sh
# README's first command in a fresh Debian 12 root: a minimal system (mmdebstrap, apt
# variant, plus git) gets a copy of this repository's HEAD and runs contrib/quickstart.sh
# inside it, as a new user would. Fails unless the output ends with the sample's
# sessions, statements and findings. Run as root; called by contrib/test.sh.
#
# The base system is cached as a tarball in $DBTAP_ROOT_CACHE (rebuilt weekly, so
# updates arrive) and the packages apt downloads inside the root in its archives/ folder,
# so a warm run costs the install and the build, not the downloads.
# The Debian mirror is the one this machine's apt uses.
set -eu
cd "$(dirname "$0")/.."
cache=${DBTAP_ROOT_CACHE:-/var/cache/dbtap-mmdebstrap}
suite=bookworm
mkdir -p "$cache/archives/partial"

# This machine's Debian sources (one-line and deb822 files), as sources.list lines for
# bookworm, bookworm-updates and bookworm-security, main only.
mirrors=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null |
	awk -v s="$suite" '
	function want(x) { return x == s || x == s "-updates" || x == s "-security" }
	/^[ \t]*deb[ \t]/ { u = ""; for (i = 2; i <= NF; i++) if ($i !~ /^\[/ && $i !~ /\]$/) { if (u == "") u = $i; else { if (want($i)) print "deb " u " " $i " main"; break } } next }
	/^Types:/ { t = $0 } /^URIs:/ { uri = $2 } /^Suites:/ { for (i = 2; i <= NF; i++) su[n++] = $i }
	/^[ \t]*$/ { if (t ~ /deb( |$)/ && uri != "") for (i = 0; i < n; i++) if (want(su[i])) print "deb " uri " " su[i] " main"; t = uri = ""; n = 0 }
	END { if (t ~ /deb( |$)/ && uri != "") for (i = 0; i < n; i++) if (want(su[i])) print "deb " uri " " su[i] " main" }' | sort -u)
if [ -z "$mirrors" ]; then
	echo "fresh root: no Debian $suite source in /etc/apt/sources.list*" >&2
	exit 1
fi

base=$cache/base-$suite.tar
# (mmdebstrap picks the format from the name: the new tarball is made under a .tar name)
if [ ! -f "$base" ] || [ ! -s "$base" ] || [ -n "$(find "$base" -mtime +6)" ]; then
	rm -rf "$base"
	echo "fresh root: making the base system ($base)"
	oldifs=$IFS
	IFS='
'
	# shellcheck disable=SC2086
	if ! mmdebstrap --quiet --variant=apt --include=git,ca-certificates --skip=cleanup/apt/lists \
		"$suite" "$cache/new-$suite.tar" $mirrors >"$cache/mmdebstrap.log" 2>&1; then
		IFS=$oldifs
		cat "$cache/mmdebstrap.log" >&2
		rm -rf "$cache/new-$suite.tar"
		echo "fresh root: mmdebstrap failed (above)" >&2
		exit 1
	fi
	IFS=$oldifs
	mv "$cache/new-$suite.tar" "$base"
fi

root=$(mktemp -d /var/tmp/dbtap-root.XXXXXX)
log=$root.log
cleanup() {
	umount "$root/var/cache/apt/archives" 2>/dev/null || true
	umount "$root/proc" 2>/dev/null || true
	rm -rf "$root" "$log"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
tar -C "$root" -xf "$base"
mkdir -p "$root/root/dbtap"
git archive HEAD | tar -C "$root/root/dbtap" -x
cp /etc/resolv.conf "$root/etc/resolv.conf"
mount -t proc proc "$root/proc"
mount --bind "$cache/archives" "$root/var/cache/apt/archives"
status=0
chroot "$root" /usr/bin/env -i HOME=/root PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 \
	sh -c 'cd /root/dbtap && contrib/quickstart.sh' >"$log" 2>&1 || status=$?
if [ "$status" != 0 ]; then
	tail -40 "$log" >&2
	echo "fresh root: contrib/quickstart.sh exited with $status" >&2
	exit 1
fi
# The output must end with the three tables, each with the sample's rows, in order.
if ! awk '
	/^== sessions/ { sec = 1; next } /^== statements/ { sec = 2; next } /^== findings/ { sec = 3; next }
	sec == 1 && /postgresql/ { ses++ } sec == 2 && /(SELECT|GRANT|INSERT)/ { st++ }
	sec == 3 && /sql_injection/ { inj = 1 } sec == 3 && /privilege_change/ { grant = 1 }
	sec == 3 && /bulk_read/ { bulk = 1 } sec == 1 && / failed / { fail = 1 }
	/^demo.db written/ { done = sec == 3 }
	END { exit !(ses >= 3 && st >= 5 && fail && inj && grant && bulk && done) }' "$log"; then
	cat "$log" >&2
	echo "fresh root: contrib/quickstart.sh did not end with the sample's sessions, statements and findings" >&2
	exit 1
fi
echo "fresh root: contrib/quickstart.sh in a new Debian $suite root printed the sample's sessions, statements and findings"
