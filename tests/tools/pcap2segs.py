#!/usr/bin/env python3
"""Turn a capture into a 'segs' file: the TCP payloads of one flow, in capture order.

Used to build decoder test inputs from real captures without the capture layer:
    pcap2segs.py FILE.pcap[ng] SERVER_PORT [FLOW_INDEX] > out.segs
Each line is 'C <hex>' (client to server) or 'S <hex>' (server to client); '#' starts a
comment. Retransmitted bytes (already-seen sequence ranges) are dropped, so the lines are
the byte stream a reassembler would deliver. Handles pcap and pcapng, Ethernet (with VLAN
tags), Linux SLL/SLL2, DLT_NULL/LOOP and raw IP; IPv4 and IPv6.
"""
import struct
import sys


def packets(path):
    data = open(path, 'rb').read()
    magic = data[:4]
    if magic in (b'\xd4\xc3\xb2\xa1', b'\x4d\x3c\xb2\xa1'):
        e = '<'
    elif magic in (b'\xa1\xb2\xc3\xd4', b'\xa1\xb2\x3c\x4d'):
        e = '>'
    elif magic == b'\x0a\x0d\x0d\x0a':
        yield from pcapng(data)
        return
    else:
        raise SystemExit(f'{path}: not a pcap file')
    linktype = struct.unpack(e + 'I', data[20:24])[0]
    off = 24
    while off + 16 <= len(data):
        _, _, incl, _ = struct.unpack(e + 'IIII', data[off:off + 16])
        yield linktype, data[off + 16:off + 16 + incl]
        off += 16 + incl


def pcapng(data):
    off, e, links = 0, '<', []
    while off + 12 <= len(data):
        btype = struct.unpack(e + 'I', data[off:off + 4])[0]
        if btype == 0x0a0d0d0a:
            bom = data[off + 8:off + 12]
            e = '<' if bom == b'\x4d\x3c\x2b\x1a' else '>'
            links = []
        blen = struct.unpack(e + 'I', data[off + 4:off + 8])[0]
        body = data[off + 8:off + blen - 4]
        if btype == 1:
            links.append(struct.unpack(e + 'H', body[:2])[0])
        elif btype == 6:
            iface, _, _, caplen, _ = struct.unpack(e + 'IIIII', body[:20])
            yield links[iface], body[20:20 + caplen]
        elif btype == 3:
            yield links[0], body[4:]
        if blen < 12:
            break
        off += blen


def ip_of(linktype, p):
    if linktype == 1:  # Ethernet
        et, o = struct.unpack('>H', p[12:14])[0], 14
        while et in (0x8100, 0x88a8, 0x9100):
            et, o = struct.unpack('>H', p[o + 2:o + 4])[0], o + 4
        return p[o:]
    if linktype == 113:
        return p[16:]
    if linktype == 276:
        return p[20:]
    if linktype in (0, 108):
        return p[4:]
    if linktype in (101, 12, 228, 229, 14):
        return p
    return b''


def tcp_of(ip):
    if not ip:
        return None
    v = ip[0] >> 4
    if v == 4:
        ihl = (ip[0] & 15) * 4
        if ip[9] != 6:
            return None
        tot = struct.unpack('>H', ip[2:4])[0]
        src, dst, seg = ip[12:16], ip[16:20], ip[ihl:tot]
    elif v == 6:
        nh, plen, o = ip[6], struct.unpack('>H', ip[4:6])[0], 40
        while nh in (0, 43, 60):
            nh, o = ip[o], o + (ip[o + 1] + 1) * 8
        if nh != 6:
            return None
        src, dst, seg = ip[8:24], ip[24:40], ip[o:40 + plen]
    else:
        return None
    sp, dp, seq = struct.unpack('>HHI', seg[:8])
    doff = (seg[12] >> 4) * 4
    flags = seg[13]
    return src, sp, dst, dp, seq, flags, seg[doff:]


def main():
    path, port = sys.argv[1], int(sys.argv[2])
    want = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    flows, nextseq = [], {}
    print(f'# {path} server port {port} flow {want}')
    for lt, p in packets(path):
        t = tcp_of(ip_of(lt, p))
        if not t:
            continue
        src, sp, dst, dp, seq, flags, payload = t
        if dp == port:
            key, d = (src, sp, dst, dp), 'C'
        elif sp == port:
            key, d = (dst, dp, src, sp), 'S'
        else:
            continue
        if key not in flows:
            flows.append(key)
        if flows.index(key) != want or not payload:
            continue
        k = (key, d)
        exp = nextseq.get(k)
        if exp is not None:
            ahead = (seq - exp) & 0xffffffff
            if ahead >= 0x80000000:  # starts before what we have: trim the old part
                skip = (exp - seq) & 0xffffffff
                if skip >= len(payload):
                    continue
                payload, seq = payload[skip:], exp
        nextseq[k] = (seq + len(payload)) & 0xffffffff
        print(d, payload.hex())


if __name__ == '__main__':
    main()
