#include "dataplane/tso.h"

#include <cstring>

#include "dataplane/inet.h"

namespace faraday::dataplane {

namespace {

using inet::kIpv4Header;
using inet::kIpv6Header;
using inet::kProtoTcp;
using inet::kProtoUdp;
using inet::kUdpHeader;
using inet::load_be16;
using inet::load_be32;
using inet::store_be16;
using inet::store_be32;
constexpr uint32_t kTcpMinHeader = 20;
constexpr uint32_t kTcpCsumOffset = 16;
constexpr uint32_t kUdpCsumOffset = 6;
constexpr uint8_t kTcpFin = 0x01;
constexpr uint8_t kTcpPsh = 0x08;
constexpr uint8_t kTcpCwr = 0x80;

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
    uint64_t sum = inet::sum(pkt.data() + start, pkt.size() - start);
    inet::store_udp_checksum(pkt.data() + at, sum);
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
    inet::store_checksum(d + 10, inet::sum(d, kIpv4Header));
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
  inet::store_udp_checksum(
      csum, inet::sum(l4, l4_length, inet::pseudo_header(d, plan.ipv6, proto, l4_length)));
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
