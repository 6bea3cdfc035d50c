// gro.cpp: the TCP coalescing planner (see gro.h for the rules it keeps).
#include "dataplane/gro.h"

#include <cstring>

#include "dataplane/inet.h"

namespace faraday::dataplane {

namespace {

using inet::kProtoTcp;
constexpr uint32_t kIpv4HeaderSize = inet::kIpv4Header;  // options are never coalesced
constexpr uint32_t kIpv6HeaderSize = inet::kIpv6Header;
constexpr uint32_t kTcpHeaderSize = 20;
constexpr uint16_t kTcpChecksumOffset = 16;

constexpr uint8_t kTcpPsh = 0x08;
constexpr uint8_t kTcpAck = 0x10;

constexpr uint16_t kIpv4DontFragment = 0x4000;

using inet::load_be16;
using inet::load_be32;
using inet::store_be16;

// A TCP segment that may take part in a run, as parsed from its packet.
struct Segment {
  const uint8_t* ip = nullptr;
  const uint8_t* tcp = nullptr;
  bool v6 = false;
  uint32_t ip_len = 0;   // IP header bytes
  uint32_t tcp_len = 0;  // TCP header bytes
  uint32_t payload = 0;  // TCP payload bytes
  uint32_t seq = 0;
  uint8_t flags = 0;

  uint32_t headers() const { return ip_len + tcp_len; }
};

// The IP header of a packet that may be coalesced: no options, no extension
// headers, not a fragment, TCP inside, length exactly the packet's.
bool parse_ip(const Packet& pkt, Segment& s) {
  const uint8_t* ip = pkt.data();
  if (pkt.length < kIpv4HeaderSize) return false;
  s.ip = ip;
  if (ip[0] == 0x45) {
    uint16_t frag = load_be16(ip + 6);
    if (load_be16(ip + 2) != pkt.length || ip[9] != kProtoTcp) return false;
    if ((frag & ~kIpv4DontFragment) != 0) return false;  // MF, offset or reserved bit
    if (!inet::verifies(inet::sum(ip, kIpv4HeaderSize))) return false;
    s.v6 = false;
    s.ip_len = kIpv4HeaderSize;
    return true;
  }
  if ((ip[0] >> 4) == 6 && pkt.length >= kIpv6HeaderSize) {
    if (kIpv6HeaderSize + load_be16(ip + 4) != pkt.length || ip[6] != kProtoTcp) return false;
    s.v6 = true;
    s.ip_len = kIpv6HeaderSize;
    return true;
  }
  return false;
}

// Parses a packet that could join a run (see gro.h); false for anything else.
bool parse_segment(const Packet& pkt, Segment& s) {
  if (!parse_ip(pkt, s)) return false;
  uint32_t segment_len = pkt.length - s.ip_len;
  if (segment_len < kTcpHeaderSize) return false;
  const uint8_t* tcp = s.ip + s.ip_len;
  s.tcp = tcp;
  s.tcp_len = static_cast<uint32_t>(tcp[12] >> 4) * 4;
  if ((tcp[12] & 0x0f) != 0) return false;  // reserved bits, AccECN's AE
  if (s.tcp_len < kTcpHeaderSize || s.tcp_len >= segment_len) return false;  // payload > 0
  s.flags = tcp[13];
  if ((s.flags & ~kTcpPsh) != kTcpAck) return false;  // ACK, maybe PSH, nothing else
  s.payload = segment_len - s.tcp_len;
  s.seq = load_be32(tcp + 4);
  uint64_t acc = inet::pseudo_header(s.ip, s.v6, kProtoTcp, segment_len);
  return inet::verifies(inet::sum(tcp, segment_len, acc));
}

// Whether b belongs to a's flow with headers the kernel would merge: the IP
// fields that every segment of a TSO burst shares, and identical TCP headers
// apart from the sequence number, checksum and PSH.
bool same_flow(const Segment& a, const Segment& b) {
  if (a.v6 != b.v6 || a.tcp_len != b.tcp_len) return false;
  if (a.v6) {
    // version, traffic class, flow label; hop limit; addresses
    if (std::memcmp(a.ip, b.ip, 4) != 0 || a.ip[7] != b.ip[7]) return false;
    if (std::memcmp(a.ip + 8, b.ip + 8, 32) != 0) return false;
  } else {
    // TOS; DF; TTL; addresses
    if (a.ip[1] != b.ip[1] || a.ip[6] != b.ip[6] || a.ip[8] != b.ip[8]) return false;
    if (std::memcmp(a.ip + 12, b.ip + 12, 8) != 0) return false;
  }
  // ports; ack, data offset, window; options
  if (std::memcmp(a.tcp, b.tcp, 4) != 0 || std::memcmp(a.tcp + 8, b.tcp + 8, 4) != 0) return false;
  if (a.tcp[12] != b.tcp[12] || std::memcmp(a.tcp + 14, b.tcp + 14, 2) != 0) return false;
  return std::memcmp(a.tcp + kTcpHeaderSize, b.tcp + kTcpHeaderSize, a.tcp_len - kTcpHeaderSize) ==
         0;
}

// Without DF the IDs must count up by one per segment, as the kernel's TSO will
// rebuild them; with DF the ID carries nothing (RFC 6864) and may be anything.
bool ids_follow(const Segment& first, const Segment& s, size_t index) {
  if (first.v6 || (load_be16(first.ip + 6) & kIpv4DontFragment)) return true;
  return load_be16(s.ip + 4) == static_cast<uint16_t>(load_be16(first.ip + 4) + index);
}

// Rewrites the first packet's headers to describe the super-packet of `total`
// IP bytes, and returns the virtio header that asks the kernel to segment it.
VirtioNetHdr rewrite_first(Packet& pkt, const Segment& first, uint32_t total, bool psh) {
  uint8_t* ip = pkt.data();
  uint8_t* tcp = ip + first.ip_len;
  if (first.v6) {
    store_be16(ip + 4, static_cast<uint16_t>(total - kIpv6HeaderSize));
  } else {
    store_be16(ip + 2, static_cast<uint16_t>(total));
    store_be16(ip + 10, 0);
    inet::store_checksum(ip + 10, inet::sum(ip, kIpv4HeaderSize));
  }
  if (psh) tcp[13] |= kTcpPsh;
  inet::store_folded(tcp + kTcpChecksumOffset,
                     inet::pseudo_header(ip, first.v6, kProtoTcp, total - first.ip_len));

  VirtioNetHdr hdr{};
  hdr.flags = kVirtioNetHdrFNeedsCsum;
  hdr.gso_type = first.v6 ? kVirtioNetHdrGsoTcpv6 : kVirtioNetHdrGsoTcpv4;
  hdr.hdr_len = static_cast<uint16_t>(first.headers());
  hdr.gso_size = static_cast<uint16_t>(first.payload);
  hdr.csum_start = static_cast<uint16_t>(first.ip_len);
  hdr.csum_offset = kTcpChecksumOffset;
  return hdr;
}

}  // namespace

TunWrite plan_tun_write(std::span<Packet> pkts) {
  TunWrite plan{};
  if (pkts.empty()) return plan;
  plan.count = 1;
  Segment first;
  if (pkts.size() < 2 || !parse_segment(pkts[0], first) || (first.flags & kTcpPsh)) return plan;
  if (first.headers() + first.payload > kGroMaxLength) return plan;

  uint32_t total = first.headers() + first.payload;
  uint32_t next_seq = first.seq + first.payload;
  bool psh = false;
  size_t count = 1;
  while (count < pkts.size() && count < kGroMaxSegments) {
    Segment s;
    if (!parse_segment(pkts[count], s) || !same_flow(first, s)) break;
    if (s.seq != next_seq || s.payload > first.payload) break;
    if (total + s.payload > kGroMaxLength || !ids_follow(first, s, count)) break;
    total += s.payload;
    next_seq += s.payload;
    ++count;
    if (s.payload < first.payload || (s.flags & kTcpPsh)) {
      psh = (s.flags & kTcpPsh) != 0;
      break;
    }
  }
  if (count == 1) return plan;
  plan.count = count;
  plan.hdr = rewrite_first(pkts[0], first, total, psh);
  return plan;
}

uint32_t tcp_payload_offset(const Packet& pkt) {
  const uint8_t* ip = pkt.data();
  uint32_t ip_len = (ip[0] >> 4) == 6 ? kIpv6HeaderSize : kIpv4HeaderSize;
  return ip_len + static_cast<uint32_t>(ip[ip_len + 12] >> 4) * 4;
}

}  // namespace faraday::dataplane
