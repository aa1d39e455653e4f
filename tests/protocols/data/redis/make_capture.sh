#!/bin/bash
# Makes resp.pcap: real redis-cli traffic to a private redis-server on loopback, for the
# stub RESP decoder that shows how a protocol is added (tests/capture/test_proto_stub.c).
# Run as root: bash tests/protocols/data/redis/make_capture.sh  (needs redis-server,
# redis-tools, tcpdump)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
PORT=${REDIS_CAPTURE_PORT:-6390}
TMP=$(mktemp -d /tmp/dbtap-rediscap-XXXXXX)
chmod 777 "$TMP"
cleanup() {
	[ -n "${TCPDUMP_PID:-}" ] && kill "$TCPDUMP_PID" 2>/dev/null || true
	[ -n "${REDIS_PID:-}" ] && kill "$REDIS_PID" 2>/dev/null || true
	rm -rf "$TMP"
}
trap cleanup EXIT
runuser -u redis -- redis-server --port "$PORT" --bind 127.0.0.1 --save '' --appendonly no \
	--requirepass 's3cret-redis-pw' --dir "$TMP" >/dev/null &
REDIS_PID=$!
sleep 0.5
tcpdump -i lo -s 0 -U -w "$TMP/resp.pcap" "tcp port $PORT" 2>/dev/null &
TCPDUMP_PID=$!
sleep 1
cli() { redis-cli -p "$PORT" --no-auth-warning "$@" >/dev/null; }
# One connection: AUTH (its password must never be stored), then commands and an error.
printf 'AUTH s3cret-redis-pw\nSET greeting hello\nGET greeting\nINCR visits\nHSET user:1 name alice\nNOSUCHCMD x\nFLUSHALL\n' |
	redis-cli -p "$PORT" >/dev/null
# A second connection with a wrong password.
cli -a wrong-pw PING || true
sleep 1
kill "$TCPDUMP_PID"
wait "$TCPDUMP_PID" 2>/dev/null || true
TCPDUMP_PID=
cp "$TMP/resp.pcap" "$HERE/resp.pcap"
echo "wrote $HERE/resp.pcap ($(stat -c %s "$HERE/resp.pcap") bytes)"
