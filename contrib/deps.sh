#!/bin/sh
# Install what dbtap needs on Debian 12, skipping what is already there.
# Usage: contrib/deps.sh build|test
#   build: what contrib/quickstart.sh needs (compiler, libraries, the sqlite3 shell);
#   test:  what contrib/test.sh needs on top (Criterion, the servers and clients the
#          integration tests drive, clang for fuzzing, mmdebstrap for the fresh-root check).
set -eu
build="meson ninja-build pkg-config gcc libc6-dev libpcap-dev libnids-dev libsqlite3-dev sqlite3
  libcjson-dev zlib1g-dev libzstd-dev libssl-dev libsystemd-dev"
test="$build libcriterion-dev postgresql-15 postgresql-client-15 mariadb-server mariadb-client
  python3 python3-psycopg2 python3-pymysql pgbouncer tcpdump tcpreplay openssl iproute2 ethtool clang time
  chromium python3-jsonschema rsyslog mmdebstrap nodejs npm python3-asyncpg hydra python3-scapy
  iptables"
case "${1:-build}" in
build) want=$build ;;
test) want=$test ;;
*) echo "usage: $0 build|test" >&2; exit 2 ;;
esac
missing=""
for p in $want; do
	case $p in
	# NodeSource's nodejs (common on CI images) bundles npm and conflicts with Debian's:
	# what the tests need is the two commands, from either.
	nodejs) command -v node >/dev/null 2>&1 && continue ;;
	npm) command -v npm >/dev/null 2>&1 && continue ;;
	esac
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
	echo "dbtap: missing packages:$missing (run as root, or: sudo apt-get install$missing)" >&2
	exit 1
fi
echo "dbtap: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
# Servers are started by the tests themselves, never by the package scripts.
if [ ! -e /usr/sbin/policy-rc.d ]; then
	printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
	chmod +x /usr/sbin/policy-rc.d
	trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
# Another apt run (an unattended upgrade, a second checkout) holds the lock: wait for it.
lock="-o DPkg::Lock::Timeout=600"
log=$(mktemp)
if ! { apt-get $lock update -qq && apt-get $lock install -y -qq --no-install-recommends $missing; } >"$log" 2>&1; then
	cat "$log" >&2
	rm -f "$log"
	echo "dbtap: apt-get could not install:$missing (its output is above)" >&2
	exit 1
fi
rm -f "$log"
