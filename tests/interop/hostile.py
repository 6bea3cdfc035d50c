#!/usr/bin/env python3
"""hostile.py: the packet half of hostile.sh (diagram: lib.sh). Plain sockets.

  hostile.py capture IFACE SPORT DPORT OUT READY
      Record the payload of every IPv4 UDP datagram SPORT -> DPORT that leaves
      IFACE (an AF_PACKET tap), one hex line per datagram in OUT, until killed.
      Touches READY once the tap is open.

  hostile.py blast A_ADDR A_PORT B_ADDR B_PORT THIRD_ADDR A_PUB_B64 CAPTURE
      Send malformed, forged and replayed WireGuard messages at A_ADDR:A_PORT,
      built from the datagrams in CAPTURE (what B sent A). Sources: an
      ephemeral port on B_ADDR, one on THIRD_ADDR, and B_ADDR:B_PORT itself (a
      raw socket, for replays "from the original source"). Prints what A must
      count, one line each:
          expect REASON[+REASON...] N EXACT|ATLEAST
          sent N
      With HOSTILE_UNDERLAY_MTU set (A does not reassemble IP fragments, as
      faradayd on a DPDK underlay), a datagram too long for one frame of that
      MTU never reaches A's WireGuard core: one longer than A's port takes
      (2048 bytes a frame) is expected among A's frame drops, as fragments on
      a NIC or, on a veth, which hands it over whole, as one truncated frame;
      one in between is not sent, since a veth would hand it over whole and
      A count it under its reason, a NIC in fragments.
"""

import base64
import hashlib
import os
import random
import socket
import struct
import sys
import time

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4

INITIATION, RESPONSE, COOKIE_REPLY, TRANSPORT = 1, 2, 3, 4
SIZE = {INITIATION: 148, RESPONSE: 92, COOKIE_REPLY: 64}
MAC1_OFFSET = {INITIATION: 116, RESPONSE: 60}
MIN_TRANSPORT = 32
REJECT_AFTER_MESSAGES = 2**64 - 2**13 - 1
LARGE = 60000
LARGEST_V4 = 65507
UNDERLAY_MTU = int(os.environ.get("HOSTILE_UNDERLAY_MTU", "0"))
PORT_FRAME = 2048  # the longest frame a DPDK port's mbuf takes whole


def capture(iface, sport, dport, out, ready):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.bind((iface, ETH_P_ALL))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
    open(ready, "w").close()
    with open(out, "w", buffering=1) as f:
        while True:
            frame, addr = s.recvfrom(65600)
            if addr[2] != PACKET_OUTGOING or len(frame) < 14 + 20 + 8:
                continue
            if struct.unpack_from("!H", frame, 12)[0] != 0x0800:
                continue
            ip = frame[14:]
            ihl = (ip[0] & 0x0F) * 4
            total, frag, proto = struct.unpack_from("!H2xHxB", ip, 2)
            if proto != socket.IPPROTO_UDP or frag & 0x3FFF:
                continue  # not UDP, or a fragment
            udp = ip[ihl:total]
            sp, dp, ulen = struct.unpack_from("!HHH", udp, 0)
            if sp == sport and dp == dport:
                f.write(udp[8:ulen].hex() + "\n")


# --- message builders ---------------------------------------------------------


def rnd(n):
    return os.urandom(n)


def le32(v):
    return struct.pack("<I", v & 0xFFFFFFFF)


def msg(type_, size):
    """type_ as a 4-byte little-endian field, then random bytes up to size."""
    head = le32(type_)
    if size <= 4:
        return head[:size]
    return head + rnd(size - 4)


def with_mac1(body, type_, a_pub):
    """body with a valid mac1 for A (anyone can compute it: A's key is public)."""
    off = MAC1_OFFSET[type_]
    key = hashlib.blake2s(b"mac1----" + a_pub).digest()
    mac1 = hashlib.blake2s(body[:off], key=key, digest_size=16).digest()
    return body[:off] + mac1 + bytes(16)


def transport(index, counter, size):
    return le32(TRANSPORT) + le32(index) + struct.pack("<Q", counter) + rnd(size - 16)


def flip(data, pos):
    b = bytearray(data)
    b[pos] ^= 0x01
    return bytes(b)


def udp_checksum(src, dst, segment):
    pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!BBH", 0, 17, len(segment))
    data = pseudo + segment + (b"\0" if len(segment) % 2 else b"")
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s & 0xFFFF) or 0xFFFF


class Sender:
    """Counts what it sends per expected drop reason; paces so A's socket buffer holds."""

    def __init__(self, a_addr, a_port, b_addr, b_port, third):
        self.a = (a_addr, a_port)
        self.b_addr, self.b_port = b_addr, b_port
        self.socks = {}
        for name, addr in (("b", b_addr), ("third", third)):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 21)
            s.bind((addr, 0))
            self.socks[name] = s
        raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_UDP)
        raw.bind((b_addr, 0))
        self.raw = raw
        self.expect = {}  # reason -> [count, exact]
        self.sent = 0
        self.bytes_since_pause = 0

    def send(self, reason, data, src="b", exact=True):
        if UNDERLAY_MTU and 28 + len(data) > UNDERLAY_MTU:
            if 14 + 28 + len(data) <= PORT_FRAME:
                return
            reason, exact = "frame_truncated+frame_fragment", False
        if src == "orig":  # B's own address and port: a hand-made UDP header
            seg = struct.pack("!HHHH", self.b_port, self.a[1], 8 + len(data), 0) + data
            csum = udp_checksum(self.b_addr, self.a[0], seg)
            self.raw.sendto(seg[:6] + struct.pack("!H", csum) + seg[8:], (self.a[0], 0))
        else:
            self.socks[src].sendto(data, self.a)
        e = self.expect.setdefault(reason, [0, exact])
        e[0] += 1
        self.sent += 1
        # A's receive buffer is ~200 KiB of skb truesize: about 200 small
        # datagrams or two 60 KB ones. Pause so it never overflows.
        self.bytes_since_pause += max(len(data), 1) + 1024
        if self.bytes_since_pause >= 48 * 1024:
            time.sleep(0.002 if len(data) < 2048 else 0.01)
            self.bytes_since_pause = 0

    def report(self):
        for reason, (n, exact) in self.expect.items():
            print("expect %s %d %s" % (reason, n, "EXACT" if exact else "ATLEAST"))
        print("sent %d" % self.sent)


def load_capture(path):
    msgs = [bytes.fromhex(l.strip()) for l in open(path) if l.strip()]
    inits = [(i, m) for i, m in enumerate(msgs) if len(m) == 148 and m[:4] == le32(INITIATION)]
    resps = [m for m in msgs if len(m) == 92 and m[:4] == le32(RESPONSE)]
    if not inits or not resps:
        sys.exit("capture %s: want an initiation and a response from B, have %d and %d"
                 % (path, len(inits), len(resps)))
    last_init_at, init = inits[-1]
    trans = [m for m in msgs[last_init_at:] if len(m) >= MIN_TRANSPORT and m[:4] == le32(TRANSPORT)]
    if not trans:
        sys.exit("capture %s: no transport datagram from B after its last initiation" % path)
    return init, resps[-1], trans[-5:]


def blast(a_addr, a_port, b_addr, b_port, third, a_pub, capture_file):
    init, resp, trans = load_capture(capture_file)
    live_index = struct.unpack_from("<I", trans[-1], 4)[0]  # A's receiving index for B
    s = Sender(a_addr, int(a_port), b_addr, int(b_port), third)
    srcs = ("b", "third")

    def unknown_index():
        while True:
            v = random.getrandbits(32)
            if v != live_index:
                return v

    # Shorter than any message; the transport header without a tag.
    for i in range(50):
        s.send("too_short", b"", srcs[i % 2])
        for n in (1, 2, 3):
            s.send("too_short", rnd(n), srcs[i % 2])
    for n in range(4, MIN_TRANSPORT):
        for i in range(5):
            s.send("too_short", msg(TRANSPORT, n), srcs[i % 2])

    # Unknown types, and known types with nonzero reserved bytes.
    for t in (0, 5, 6, 0x7F, 0xFF, 0x100, 0x10000, 0x01000000, 0xFFFFFFFF):
        for n in (4, 32, 64, 92, 148, 1000):
            s.send("unknown_type", msg(t, n), srcs[n % 2])
    for _ in range(100):
        t = random.getrandbits(32)
        if not 1 <= t <= 4:
            s.send("unknown_type", msg(t, random.choice((4, 32, 148, 600))), "third")
    for t in (INITIATION, RESPONSE, COOKIE_REPLY, TRANSPORT):
        n = SIZE.get(t, 64)
        for reserved in (0x100, 0x10000, 0x1000000, 0xFFFFFF00):
            for i in range(10):
                s.send("unknown_type", msg(t | reserved, n), srcs[i % 2])
    for i in range(20):  # a real initiation and transport, reserved byte set
        s.send("unknown_type", init[:3] + b"\x01" + init[4:], srcs[i % 2])
        s.send("unknown_type", trans[-1][:1] + b"\x80" + trans[-1][2:], srcs[i % 2])

    # Handshake messages of the wrong size (truncated, oversized, huge).
    for t, size in SIZE.items():
        for n in list(range(4, size, 7)) + [size - 1, size + 1, size + 16, 1500, 2 * size]:
            s.send("bad_size", msg(t, n), srcs[n % 2])
    for i in range(10):
        s.send("bad_size", init[: 148 - 1 - i], srcs[i % 2])
        s.send("bad_size", init + rnd(1 + i), srcs[i % 2])
        s.send("bad_size", resp[: 92 - 1 - i], srcs[i % 2])
    for t in (INITIATION, RESPONSE, COOKIE_REPLY):
        s.send("bad_size", msg(t, LARGE), "b")
    s.send("bad_size", msg(INITIATION, LARGEST_V4), "third")

    # Right type and size, random content: mac1 fails.
    for i in range(200):
        s.send("bad_mac1", msg(INITIATION, 148), srcs[i % 2])
        s.send("bad_mac1", msg(RESPONSE, 92), srcs[i % 2])
    for i in range(10):  # a real one with one bit changed: in the body, in mac1
        s.send("bad_mac1", flip(init, 8 + i), srcs[i % 2])
        s.send("bad_mac1", flip(init, MAC1_OFFSET[INITIATION] + i), srcs[i % 2])
        s.send("bad_mac1", flip(resp, 12 + i), srcs[i % 2])

    # Cookie replies (they carry no mac1): for no handshake, and for a live
    # index with a cookie that does not decrypt.
    for i in range(200):
        c = msg(COOKIE_REPLY, 64)
        s.send("unexpected_response", c[:4] + le32(unknown_index()) + c[8:], srcs[i % 2],
               exact=False)
    for i in range(100):
        c = msg(COOKIE_REPLY, 64)
        s.send("bad_cookie_reply", c[:4] + le32(live_index) + c[8:], srcs[i % 2])

    # Transport data: unknown index, failing tag at the live index, counters past
    # REJECT_AFTER_MESSAGES, a real datagram with one bit changed.
    sizes = (32, 33, 48, 100, 1000, 1440)
    for i in range(500):
        s.send("unknown_index", transport(unknown_index(), i, sizes[i % len(sizes)]), srcs[i % 2],
               exact=False)
    for i in range(3):
        s.send("unknown_index", transport(unknown_index(), i, LARGE), srcs[i % 2], exact=False)
    for i in range(500):
        counter = random.getrandbits(random.choice((8, 16, 40, 60)))
        s.send("decrypt_failed", transport(live_index, counter, sizes[i % len(sizes)]),
               srcs[i % 2], exact=False)
    for i in range(3):
        s.send("decrypt_failed", transport(live_index, i, LARGE), srcs[i % 2], exact=False)
    s.send("decrypt_failed", transport(live_index, 7, LARGEST_V4), "third", exact=False)
    for i in range(20):
        t = trans[-1]
        s.send("decrypt_failed", flip(t, len(t) - 1 - i), srcs[i % 2], exact=False)  # tag
        s.send("decrypt_failed", flip(t, 8 + (i % 8)), srcs[i % 2], exact=False)  # counter
    for i in range(50):
        counter = REJECT_AFTER_MESSAGES + random.randrange(0, 2**13 + 1)
        s.send("keypair_expired", transport(live_index, counter, 48), srcs[i % 2])

    # Replayed transport data: from B's own address and port, another port, another address.
    for i in range(50):
        for src in ("orig", "b", "third"):
            s.send("replay_duplicate+replay_too_old", trans[i % len(trans)], src, exact=False)

    # Messages with a valid mac1 count toward A's "under load" threshold (64
    # a second, then it demands cookies); keep each second's batch well below.
    time.sleep(1.1)
    for i in range(10):
        for src in ("orig", "b", "third"):
            s.send("replayed_timestamp+initiation_flood", init, src)
    time.sleep(1.1)
    for i in range(10):
        s.send("unexpected_response", resp, ("orig", "b", "third")[i % 3], exact=False)
        r = msg(RESPONSE, 92)
        s.send("unexpected_response", with_mac1(r[:4] + r[4:8] + le32(unknown_index()) + r[12:],
                                                RESPONSE, a_pub), srcs[i % 2], exact=False)
        m = bytearray(msg(INITIATION, 148))
        if i == 0:
            m[8:40] = bytes(32)  # ephemeral zero: the DH fails
        elif i == 1:
            m[8:40] = bytes([1]) + bytes(31)  # a low-order point: the DH fails
        s.send("handshake_decrypt", with_mac1(bytes(m), INITIATION, a_pub), srcs[i % 2])
    s.report()


def main(argv):
    if len(argv) == 6 and argv[0] == "capture":
        capture(argv[1], int(argv[2]), int(argv[3]), argv[4], argv[5])
    elif len(argv) == 8 and argv[0] == "blast":
        blast(*argv[1:6], base64.b64decode(argv[6]), argv[7])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
