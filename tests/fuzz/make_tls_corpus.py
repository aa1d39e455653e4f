#!/usr/bin/env python3
"""Turn a TLS database session captured on lo (tests/integration/tls_decrypt.py keeps its
captures and key logs in its temporary directory) into a fuzz_tls seed: the key log, then
the TCP payload of each packet in order with its direction.
Usage: make_tls_corpus.py CAPTURE.pcap KEYLOG SERVER_PORT OUT"""
import struct
import sys


def packets(path):
    with open(path, 'rb') as f:
        data = f.read()
    magic = struct.unpack('<I', data[:4])[0]
    if magic not in (0xa1b2c3d4, 0xa1b23c4d):
        raise SystemExit('classic little-endian pcap expected (tcpdump -w)')
    link = struct.unpack('<I', data[20:24])[0]
    off = 24
    while off + 16 <= len(data):
        incl = struct.unpack('<I', data[off + 8:off + 12])[0]
        frame = data[off + 16:off + 16 + incl]
        off += 16 + incl
        if link == 1:  # Ethernet (lo on Linux)
            if frame[12:14] != b'\x08\x00':
                continue
            ip = frame[14:]
        elif link == 113:  # Linux cooked
            ip = frame[16:]
        else:
            raise SystemExit(f'link type {link} not handled')
        if ip[0] >> 4 != 4 or ip[9] != 6:
            continue
        ihl = (ip[0] & 15) * 4
        tot = struct.unpack('>H', ip[2:4])[0]
        tcp = ip[ihl:tot]
        sport, dport = struct.unpack('>HH', tcp[:4])
        doff = (tcp[12] >> 4) * 4
        yield sport, dport, tcp[doff:]


def main():
    pcap, keylog, port, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    keys = open(keylog, 'rb').read()
    seed = struct.pack('>H', len(keys)) + keys
    started = [False, False]  # the database's own bytes before TLS are left out
    for sport, dport, payload in packets(pcap):
        if payload and port in (sport, dport):
            d = 0 if dport == port else 1
            started[d] = started[d] or payload[:2] == b'\x16\x03'
            if not started[d]:
                continue
            for i in range(0, len(payload), 65535):
                part = payload[i:i + 65535]
                seed += struct.pack('>BH', d, len(part)) + part
    with open(out, 'wb') as f:
        f.write(seed)


main()
