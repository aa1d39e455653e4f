#!/bin/sh
# Print the BPF expression that keeps bucket K of N for a symmetric flow split across N
# dbtap sensors (contrib/deploy.md): both directions of a TCP flow hash to the same bucket,
# IPv4 and IPv6, untagged, VLAN and QinQ. Usage: split_filter.sh N K   (0 <= K < N)
# bench.py checks this output equals its own split_filter() and tests it on captures.
set -eu
if [ $# -ne 2 ] || [ "$2" -ge "$1" ] 2>/dev/null || [ "$1" -lt 1 ]; then
	echo "usage: split_filter.sh N K   (0 <= K < N)" >&2
	exit 2
fi
n=$1 k=$2
v4="(((ip[12:4] + ip[16:4] + tcp[0:2] + tcp[2:2]) * 2654435761) >> 16) % $n = $k"
a6="ip6[8:4] + ip6[12:4] + ip6[16:4] + ip6[20:4] + ip6[24:4] + ip6[28:4] + ip6[32:4] + ip6[36:4]"
v6="((($a6 + ip6[40:2] + ip6[42:2]) * 2654435761) >> 16) % $n = $k"
one="(ip and tcp and $v4) or (ip6 and ip6[6] = 6 and $v6)"
echo "($one) or (vlan and (($one) or (vlan and ($one))))"
