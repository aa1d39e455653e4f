"""Helpers for the baseline tests: move a capture in time (rewrite every packet timestamp of a
classic pcap file so the first packet lands on a chosen UTC instant, keeping the gaps between
packets), and a loopback TCP relay whose outgoing side binds another 127.x address so a real
client appears to the server (and to dbtap) as a new client address.

Usage as a tool: baseline_pcap.py IN.pcap OUT.pcap 2026-11-03T10:00:00Z
"""
import calendar
import socket
import struct
import sys
import threading
import time

_MAGIC = {0xa1b2c3d4: ('<', 1000000), 0xa1b23c4d: ('<', 1000000000)}


def _epoch(iso):
    """'2026-11-03T10:00:00Z' -> seconds since the epoch (UTC)."""
    return calendar.timegm(time.strptime(iso.rstrip('Z'), '%Y-%m-%dT%H:%M:%S'))


def retime(src, dst, start_iso):
    """Copy src to dst with packet times shifted so the first packet is at start_iso."""
    with open(src, 'rb') as f:
        data = f.read()
    if len(data) < 24:
        raise ValueError(f'{src}: not a pcap file')
    magic_le = struct.unpack('<I', data[:4])[0]
    magic_be = struct.unpack('>I', data[:4])[0]
    if magic_le in _MAGIC:
        end, unit = _MAGIC[magic_le]
    elif magic_be in _MAGIC:
        end, unit = '>', _MAGIC[magic_be][1]
    else:
        raise ValueError(f'{src}: not a classic pcap file (pcapng is not supported)')
    out = bytearray(data[:24])
    off = 24
    target = _epoch(start_iso) * unit
    shift = None
    hdr = struct.Struct(end + 'IIII')
    while off + 16 <= len(data):
        sec, frac, caplen, wirelen = hdr.unpack_from(data, off)
        t = sec * unit + frac
        if shift is None:
            shift = target - t
        t += shift
        out += hdr.pack(t // unit, t % unit, caplen, wirelen)
        out += data[off + 16:off + 16 + caplen]
        off += 16 + caplen
    with open(dst, 'wb') as f:
        f.write(out)


class Relay:
    """Accepts on 127.0.0.1:<port>, connects to the server from bind_ip (e.g. 127.0.0.2)."""

    def __init__(self, server_port, bind_ip):
        self.server_port = server_port
        self.bind_ip = bind_ip
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(('127.0.0.1', 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.stop = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _pipe(self, a, b):
        try:
            while True:
                d = a.recv(65536)
                if not d:
                    break
                b.sendall(d)
        except OSError:
            pass
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _accept(self):
        while not self.stop:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            up = socket.socket()
            up.bind((self.bind_ip, 0))
            up.connect(('127.0.0.1', self.server_port))
            threading.Thread(target=self._pipe, args=(c, up), daemon=True).start()
            threading.Thread(target=self._pipe, args=(up, c), daemon=True).start()

    def close(self):
        self.stop = True
        self.sock.close()


if __name__ == '__main__':
    if len(sys.argv) != 4:
        print(__doc__)
        sys.exit(2)
    retime(sys.argv[1], sys.argv[2], sys.argv[3])
