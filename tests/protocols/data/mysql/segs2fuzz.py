#!/usr/bin/env python3
"""Turn a .segs file into a seed for tests/fuzz/fuzz_mysql.c:
    segs2fuzz.py FLAGS SPLIT IN.segs OUT
FLAGS: bit0 mid-stream, bit1 gaps, bit2 stop early; SPLIT: cut each record there (0 = no).
Segments longer than 32767 bytes become several records."""
import sys

flags, split, src, dst = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
out = bytearray([flags, split])
for line in open(src):
    if line[:1] not in ('C', 'S'):
        continue
    data = bytes.fromhex(line[2:].strip())
    for i in range(0, len(data), 32767):
        chunk = data[i:i + 32767]
        hdr = len(chunk) | (0x8000 if line[0] == 'S' else 0)
        out += bytes([hdr >> 8, hdr & 0xff]) + chunk
open(dst, 'wb').write(out)
