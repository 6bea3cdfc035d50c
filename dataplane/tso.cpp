#include "dataplane/tso.h"

#include <cstring>

namespace faraday::dataplane {

namespace {

constexpr uint8_t kProtoTcp = 6;
constexpr uint8_t kProtoUdp = 17;
constexpr uint32_t kIpv4Header = 20;
constexpr uint32_t kIpv6Header = 40;
constexpr uint32_t kTcpMinHeader = 20;
constexpr uint32_t kUdpHeader = 8;
constexpr uint32_t kTcpCsumOffset = 16;
constexpr uint32_t kUdpCsumOffset = 6;
constexpr uint8_t kTcpFin = 0x01;
constexpr uint8_t kTcpPsh = 0x08;
constexpr uint8_t kTcpCwr = 0x80;

uint16_t load_be16(const uint8_t* p) {
  return static_cast<uint16_t>(p[0] << 8 | p[1]);
}
uint32_t load_be32(const uint8_t* p) {
  return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | p[3];
}
void store_be16(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}
void store_be32(uint8_t* p, uint32_t v) {
  store_be16(p, v >> 16);
  store_be16(p + 2, v);
}

// RFC 1071: the one's complement sum of the bytes as they lie in memory, in
// 64-bit words with end-around carry. Byte order does not matter as long as the
// folded result is stored back the same way (store_sum).
uint64_t sum_bytes(const uint8_t* p, size_t n, uint64_t sum) {
  auto add = [&sum](uint64_t w) {
    sum += w;
    if (sum < w) ++sum;
  };
  for (; n >= 8; p += 8, n -= 8) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    add(w);
  }
  for (; n >= 2; p += 2, n -= 2) {
    uint16_t w;
    std::memcpy(&w, p, 2);
    add(w);
  }
  if (n == 1) {
    uint8_t last[2] = {p[0], 0};
    uint16_t w;
    std::memcpy(&w, last, 2);
    add(w);
  }
  return sum;
}

// A big-endian 16-bit field's contribution to a sum_bytes sum.
uint64_t wire16(uint32_t v) {
  uint8_t b[2];
  store_be16(b, v);
  uint16_t w;
  std::memcpy(&w, b, 2);
  return w;
}

// Folds the sum and stores its complement at p (0 becomes 0xffff, which means
// the same and keeps UDP's "no checksum" value out).
void store_sum(uint8_t* p, uint64_t sum) {
  sum = (sum & 0xffffffff) + (sum >> 32);
  sum = (sum & 0xffffffff) + (sum >> 32);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  auto folded = static_cast<uint16_t>(~sum);
  if (folded == 0) folded = 0xffff;
  std::memcpy(p, &folded, 2);
}

// The pseudo-header of the L4 checksum (RFC 793 / RFC 8200 section 8.1).
uint64_t pseudo_sum(const uint8_t* ip, bool ipv6, uint8_t proto, uint32_t l4_length) {
  uint64_t sum = ipv6 ? sum_bytes(ip + 8, 32, 0) : sum_bytes(ip + 12, 8, 0);
  sum = (sum & 0xffffffff) + (sum >> 32);  // room for the rest without a carry out
  return sum + wire16(proto) + wire16(l4_length);
}

// gso_type NONE: passed on whole, with the checksum completed if asked.
Result<TsoPlan, TsoDrop> parse_whole(const VirtioNetHdr& hdr, std::span<uint8_t> pkt) {
  if (pkt.empty()) return TsoDrop::kIpHeader;
  if (hdr.hdr_len > pkt.size()) return TsoDrop::kHdrLen;
  if (hdr.flags & kVirtioNetHdrFNeedsCsum) {
    uint32_t start = hdr.csum_start;
    uint32_t at = start + hdr.csum_offset;
    if (at + 2 > pkt.size()) return TsoDrop::kCsumStart;
    // The field holds the pseudo-header sum; the sum from csum_start to the end
    // includes it.
    uint64_t sum = sum_bytes(pkt.data() + start, pkt.size() - start, 0);
    store_sum(pkt.data() + at, sum);
  }
  TsoPlan plan;
  plan.length = plan.gso_size = static_cast<uint32_t>(pkt.size());
  return plan;
}

// The IP header of a super-packet: sets ipv6 and ip_header; returns the L4 protocol.
Result<uint8_t, TsoDrop> parse_ip(std::span<const uint8_t> pkt, TsoPlan& plan) {
  if (pkt.empty()) return TsoDrop::kIpHeader;
  uint8_t version = pkt[0] >> 4;
  if (version == 4) {
    if (pkt.size() < kIpv4Header) return TsoDrop::kIpHeader;
    uint32_t ihl = (pkt[0] & 0x0f) * 4u;
    if (ihl < kIpv4Header) return TsoDrop::kIpHeader;
    if (ihl > kIpv4Header) return TsoDrop::kIpOptions;
    if (load_be16(pkt.data() + 2) != pkt.size()) return TsoDrop::kIpHeader;
    if (load_be16(pkt.data() + 6) & 0x3fff) return TsoDrop::kIpFragment;  // MF or offset
    plan.ipv6 = false;
    plan.ip_header = kIpv4Header;
    return pkt[9];
  }
  if (version == 6) {
    if (pkt.size() < kIpv6Header) return TsoDrop::kIpHeader;
    if (load_be16(pkt.data() + 4) + kIpv6Header != pkt.size()) return TsoDrop::kIpHeader;
    uint8_t next = pkt[6];
    if (next != kProtoTcp && next != kProtoUdp) return TsoDrop::kIpv6NextHeader;
    plan.ipv6 = true;
    plan.ip_header = kIpv6Header;
    return next;
  }
  return TsoDrop::kIpVersion;
}

// TCPV4, TCPV6, UDP_L4: IP and L4 header, checksum fields, segment count.
Result<TsoPlan, TsoDrop> parse_gso(const VirtioNetHdr& hdr, uint8_t type,
                                   std::span<const uint8_t> pkt) {
  if (hdr.gso_size == 0) return TsoDrop::kGsoSizeZero;
  if (hdr.hdr_len > pkt.size()) return TsoDrop::kHdrLen;
  TsoPlan plan;
  auto proto = parse_ip(pkt, plan);
  if (!proto) return proto.failure();
  bool tcp = type != kVirtioNetHdrGsoUdpL4;
  if ((type == kVirtioNetHdrGsoTcpv4 && plan.ipv6) || (type == kVirtioNetHdrGsoTcpv6 && !plan.ipv6))
    return TsoDrop::kIpVersion;
  if (*proto != (tcp ? kProtoTcp : kProtoUdp)) return TsoDrop::kL4Protocol;

  uint32_t l4_header = kUdpHeader;
  if (tcp) {
    if (plan.ip_header + kTcpMinHeader > pkt.size()) return TsoDrop::kL4Header;
    l4_header = (pkt[plan.ip_header + 12] >> 4) * 4u;
    if (l4_header < kTcpMinHeader) return TsoDrop::kL4Header;
  }
  if (plan.ip_header + l4_header > pkt.size()) return TsoDrop::kL4Header;
  if (hdr.flags & kVirtioNetHdrFNeedsCsum) {
    if (hdr.csum_start != plan.ip_header ||
        hdr.csum_offset != (tcp ? kTcpCsumOffset : kUdpCsumOffset))
      return TsoDrop::kCsumStart;
  }
  plan.kind = tcp ? TsoPlan::Kind::kTcp : TsoPlan::Kind::kUdp;
  plan.header = plan.ip_header + l4_header;
  plan.gso_size = hdr.gso_size;
  plan.length = static_cast<uint32_t>(pkt.size());
  uint32_t payload = plan.length - plan.header;
  plan.segments = payload == 0 ? 1 : (payload + plan.gso_size - 1) / plan.gso_size;
  if (plan.segments > kTsoMaxSegments) return TsoDrop::kTooManySegments;
  return plan;
}

// Segment i of a super-packet, already copied to d (len bytes): its own lengths,
// IPv4 id, TCP sequence number and flags, and checksums.
void fix_segment(const TsoPlan& plan, uint8_t* d, uint32_t i, uint32_t len) {
  if (plan.ipv6) {
    store_be16(d + 4, len - kIpv6Header);
  } else {
    store_be16(d + 2, len);
    store_be16(d + 4, load_be16(d + 4) + i);
    d[10] = d[11] = 0;
    store_sum(d + 10, sum_bytes(d, kIpv4Header, 0));
  }
  uint8_t* l4 = d + plan.ip_header;
  uint32_t l4_length = len - plan.ip_header;
  uint8_t* csum;
  if (plan.kind == TsoPlan::Kind::kTcp) {
    store_be32(l4 + 4, load_be32(l4 + 4) + i * plan.gso_size);
    if (i + 1 < plan.segments) l4[13] &= static_cast<uint8_t>(~(kTcpFin | kTcpPsh));
    if (i > 0) l4[13] &= static_cast<uint8_t>(~kTcpCwr);
    csum = l4 + kTcpCsumOffset;
  } else {
    store_be16(l4 + 4, l4_length);
    csum = l4 + kUdpCsumOffset;
  }
  csum[0] = csum[1] = 0;
  uint8_t proto = plan.kind == TsoPlan::Kind::kTcp ? kProtoTcp : kProtoUdp;
  store_sum(csum, sum_bytes(l4, l4_length, pseudo_sum(d, plan.ipv6, proto, l4_length)));
}

}  // namespace

const char* tso_drop_name(TsoDrop reason) {
  switch (reason) {
    case TsoDrop::kBadGsoType:
      return "bad_gso_type";
    case TsoDrop::kGsoSizeZero:
      return "gso_size_zero";
    case TsoDrop::kHdrLen:
      return "hdr_len";
    case TsoDrop::kCsumStart:
      return "csum_start";
    case TsoDrop::kIpVersion:
      return "ip_version";
    case TsoDrop::kIpHeader:
      return "ip_header";
    case TsoDrop::kIpOptions:
      return "ip_options";
    case TsoDrop::kIpFragment:
      return "ip_fragment";
    case TsoDrop::kIpv6NextHeader:
      return "ipv6_next_header";
    case TsoDrop::kL4Protocol:
      return "l4_protocol";
    case TsoDrop::kL4Header:
      return "l4_header";
    case TsoDrop::kTooManySegments:
      return "too_many_segments";
    case TsoDrop::kSegmentTooLarge:
      return "segment_too_large";
    case TsoDrop::kCount:
      break;
  }
  return "unknown";
}

Result<TsoPlan, TsoDrop> tso_parse(const VirtioNetHdr& hdr, std::span<uint8_t> pkt) {
  if (pkt.size() > 0xffffffu) return TsoDrop::kIpHeader;  // no IP packet is this long
  uint8_t type = hdr.gso_type & static_cast<uint8_t>(~kVirtioNetHdrGsoEcn);
  switch (type) {
    case kVirtioNetHdrGsoNone:
      return parse_whole(hdr, pkt);
    case kVirtioNetHdrGsoTcpv4:
    case kVirtioNetHdrGsoTcpv6:
    case kVirtioNetHdrGsoUdpL4:
      return parse_gso(hdr, type, pkt);
    default:
      return TsoDrop::kBadGsoType;
  }
}

Result<size_t, TsoDrop> tso_segment(const TsoPlan& plan, std::span<const uint8_t> pkt,
                                    uint32_t first, std::span<Packet> out) {
  if (pkt.size() != plan.length) return TsoDrop::kIpHeader;  // not the packet parsed
  size_t n = 0;
  for (uint32_t i = first; i < plan.segments && n < out.size(); ++i, ++n) {
    Packet& p = out[n];
    uint32_t len = plan.segment_length(i);
    if (p.capacity < kHeadroom + kTailroom || len > p.max_payload())
      return TsoDrop::kSegmentTooLarge;
    p.offset = kHeadroom;
    p.length = len;
    p.endpoint = {};
    uint8_t* d = p.data();
    if (plan.kind == TsoPlan::Kind::kWhole) {
      std::memcpy(d, pkt.data(), len);
      continue;
    }
    std::memcpy(d, pkt.data(), plan.header);
    std::memcpy(d + plan.header, pkt.data() + plan.header + size_t{i} * plan.gso_size,
                len - plan.header);
    fix_segment(plan, d, i, len);
  }
  return n;
}

Result<size_t, TsoDrop> tso_split(const VirtioNetHdr& hdr, std::span<uint8_t> pkt,
                                  std::span<Packet> out) {
  auto plan = tso_parse(hdr, pkt);
  if (!plan) return plan.failure();
  if (out.size() < plan->segments) return TsoDrop::kSegmentTooLarge;
  return tso_segment(*plan, pkt, 0, out);
}

}  // namespace faraday::dataplane
