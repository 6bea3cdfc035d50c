// underlay.cpp: see underlay.h.
#include "dataplane/underlay.h"

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "dataplane/inet.h"

namespace faraday::dataplane {

using inet::load_be16;
using inet::load_be32;
using inet::store_be16;
using inet::store_be32;

namespace {

constexpr size_t kArpLength = 28;
constexpr uint16_t kArpRequest = 1;
constexpr uint16_t kArpReply = 2;
constexpr size_t kMinFrame = 60;  // Ethernet's minimum, without the FCS
constexpr uint8_t kIpv6Fragment = 44;
constexpr uint8_t kNdHopLimit = 255;
constexpr uint8_t kIcmpNs = 135;
constexpr uint8_t kIcmpNa = 136;
constexpr size_t kNdLength = 24;  // type, code, checksum, flags, target
constexpr uint8_t kOptSourceLink = 1;
constexpr uint8_t kOptTargetLink = 2;
constexpr uint32_t kNaSolicited = 0x40000000;
constexpr uint32_t kNaOverride = 0x20000000;
constexpr uint32_t kNaSolicitedOverride = kNaSolicited | kNaOverride;
constexpr uint8_t kDefaultTtl = 64;

constexpr MacAddress kBroadcast = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

MacAddress mac_at(const uint8_t* p) {
  MacAddress m;
  std::memcpy(m.data(), p, 6);
  return m;
}

bool same(const uint8_t* p, const uint8_t* q, size_t n) {
  return std::memcmp(p, q, n) == 0;
}

// ff02::1:ffXX:XXXX, the solicited-node multicast address of addr.
std::array<uint8_t, 16> solicited_node(const std::array<uint8_t, 16>& addr) {
  std::array<uint8_t, 16> m = {0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0xff};
  std::memcpy(m.data() + 13, addr.data() + 13, 3);
  return m;
}

constexpr std::array<uint8_t, 16> kAllNodes = {0xff, 0x02, 0, 0, 0, 0, 0, 0,
                                               0,    0,    0, 0, 0, 0, 0, 1};

// bits is clamped to the address's width (max_bits), so a bad prefix length
// cannot read past the address.
bool in_prefix(const uint8_t* addr, const uint8_t* net, uint8_t bits, uint8_t max_bits) {
  bits = std::min(bits, max_bits);
  size_t whole = bits / 8;
  if (!same(addr, net, whole)) return false;
  if (bits % 8 == 0) return true;
  auto mask = static_cast<uint8_t>(0xff << (8 - bits % 8));
  return (addr[whole] & mask) == (net[whole] & mask);
}

void write_ethernet(uint8_t* p, const MacAddress& to, const MacAddress& from, uint16_t type) {
  std::memcpy(p, to.data(), 6);
  std::memcpy(p + 6, from.data(), 6);
  store_be16(p + 12, type);
}

Result<Frame, FrameDrop> classify_arp(std::span<const uint8_t> arp, const UnderlayAddress& self,
                                      Frame f) {
  if (arp.size() < kArpLength) return FrameDrop::kTruncated;
  const uint8_t* a = arp.data();
  if (load_be16(a) != 1 || load_be16(a + 2) != kEtherIpv4 || a[4] != 6 || a[5] != 4)
    return FrameDrop::kBadArp;
  uint16_t op = load_be16(a + 6);
  if (op != kArpRequest && op != kArpReply) return FrameDrop::kBadArp;
  if (!self.v4 || !same(a + 24, self.v4->addr.data(), 4)) return FrameDrop::kNotForUs;
  f.kind = op == kArpRequest ? Frame::Kind::kArpRequest : Frame::Kind::kArpReply;
  f.neighbor_family = AF_INET;
  f.neighbor_mac = mac_at(a + 8);
  std::memcpy(f.neighbor_ip.data(), a + 14, 4);
  return f;
}

// The UDP datagram at udp, within l4_length bytes of IP payload of the header
// at ip. The checksum's pseudo-header carries the UDP length (RFC 768, RFC 8200
// section 8.1), which may be less than the IP payload's.
Result<Frame, FrameDrop> classify_udp(std::span<const uint8_t> frame, const uint8_t* ip, bool v6,
                                      size_t udp, size_t l4_length, const UnderlayAddress& self,
                                      RxChecked checked, Frame f) {
  if (l4_length < inet::kUdpHeader) return FrameDrop::kTruncated;
  const uint8_t* u = frame.data() + udp;
  if (load_be16(u + 2) != self.port) return FrameDrop::kNotForUs;
  size_t udp_length = load_be16(u + 4);
  if (udp_length < inet::kUdpHeader || udp_length > l4_length) return FrameDrop::kBadUdp;
  uint16_t field = load_be16(u + 6);
  if (field == 0 && v6) return FrameDrop::kBadUdp;  // optional in IPv4 only
  if (field != 0 && !checked.l4_checksum &&
      !inet::verifies(inet::sum(
          u, udp_length,
          inet::pseudo_header(ip, v6, inet::kProtoUdp, static_cast<uint32_t>(udp_length)))))
    return FrameDrop::kBadUdp;
  f.kind = Frame::Kind::kDatagram;
  f.payload_offset = udp + inet::kUdpHeader;
  f.payload_length = udp_length - inet::kUdpHeader;
  f.source.port = load_be16(u);
  return f;
}

Result<Frame, FrameDrop> classify_ipv4(std::span<const uint8_t> frame, const UnderlayAddress& self,
                                       RxChecked checked, Frame f) {
  const size_t ip = kEthernetHeader;
  if (frame.size() < ip + inet::kIpv4Header) return FrameDrop::kTruncated;
  const uint8_t* h = frame.data() + ip;
  size_t header = size_t{h[0] & 0x0fu} * 4;
  size_t total = load_be16(h + 2);
  if (h[0] >> 4 != 4 || header < inet::kIpv4Header || total < header)
    return FrameDrop::kBadIpHeader;
  if (frame.size() < ip + total) return FrameDrop::kTruncated;
  if (!checked.ip_checksum && !inet::verifies(inet::sum(h, header))) return FrameDrop::kBadIpHeader;
  if (load_be16(h + 6) & 0x3fff) return FrameDrop::kFragment;  // MF or an offset
  if (!self.v4 || !same(h + 16, self.v4->addr.data(), 4)) return FrameDrop::kNotForUs;
  if (h[9] != inet::kProtoUdp) return FrameDrop::kUnsupported;
  f.source.family = AF_INET;
  std::memcpy(f.source.addr.data(), h + 12, 4);
  return classify_udp(frame, h, false, ip + header, total - header, self, checked, f);
}

// The options of an NS or NA: the link-layer address of `wanted` type, if given.
Result<std::optional<MacAddress>, FrameDrop> nd_link_option(const uint8_t* p, size_t n,
                                                            uint8_t wanted) {
  std::optional<MacAddress> mac;
  while (n > 0) {
    if (n < 2 || p[1] == 0 || size_t{p[1]} * 8 > n) return FrameDrop::kBadNd;
    size_t len = size_t{p[1]} * 8;
    if (p[0] == wanted) {
      if (len != 8) return FrameDrop::kBadNd;  // Ethernet: 6 bytes in one unit
      mac = mac_at(p + 2);
    }
    p += len;
    n -= len;
  }
  return mac;
}

Result<Frame, FrameDrop> classify_nd(const uint8_t* h, const uint8_t* icmp, size_t length,
                                     const UnderlayAddress& self, bool to_group, Frame f) {
  if (h[7] != kNdHopLimit || length < kNdLength) return FrameDrop::kBadNd;
  if (!inet::verifies(inet::sum(
          icmp, length,
          inet::pseudo_header(h, true, inet::kProtoIcmpv6, static_cast<uint32_t>(length)))))
    return FrameDrop::kBadNd;
  if (icmp[1] != 0) return FrameDrop::kBadNd;
  const uint8_t* target = icmp + 8;
  const bool ns = icmp[0] == kIcmpNs;
  auto option =
      nd_link_option(icmp + kNdLength, length - kNdLength, ns ? kOptSourceLink : kOptTargetLink);
  if (!option) return option.failure();
  f.neighbor_family = AF_INET6;
  f.neighbor_mac = option->value_or(f.source_mac);
  if (ns) {
    if (!same(target, self.v6->addr.data(), 16)) return FrameDrop::kNotForUs;
    static constexpr uint8_t kUnspecified[16] = {};
    if (same(h + 8, kUnspecified, 16)) return FrameDrop::kNotForUs;  // duplicate detection
    f.kind = Frame::Kind::kSolicitation;
    std::memcpy(f.neighbor_ip.data(), h + 8, 16);
    return f;
  }
  if (to_group && !same(h + 24, kAllNodes.data(), 16)) return FrameDrop::kNotForUs;
  // RFC 4861 section 7.1.2: no multicast target, no Solicited flag to a group.
  const uint32_t flags = load_be32(icmp + 4);
  if (target[0] == 0xff || (to_group && (flags & kNaSolicited))) return FrameDrop::kBadNd;
  f.neighbor_override = (flags & kNaOverride) != 0;
  f.kind = Frame::Kind::kAdvertisement;
  std::memcpy(f.neighbor_ip.data(), target, 16);
  return f;
}

Result<Frame, FrameDrop> classify_ipv6(std::span<const uint8_t> frame, const UnderlayAddress& self,
                                       RxChecked checked, Frame f) {
  const size_t ip = kEthernetHeader;
  if (frame.size() < ip + inet::kIpv6Header) return FrameDrop::kTruncated;
  const uint8_t* h = frame.data() + ip;
  if (h[0] >> 4 != 6) return FrameDrop::kBadIpHeader;
  size_t length = load_be16(h + 4);
  if (frame.size() < ip + inet::kIpv6Header + length) return FrameDrop::kTruncated;
  if (!self.v6) return FrameDrop::kNotForUs;
  const uint8_t* dst = h + 24;
  const bool to_us = same(dst, self.v6->addr.data(), 16);
  const bool to_group =
      same(dst, solicited_node(self.v6->addr).data(), 16) || same(dst, kAllNodes.data(), 16);
  if (!to_us && !to_group) return FrameDrop::kNotForUs;
  const uint8_t next = h[6];
  if (next == kIpv6Fragment) return FrameDrop::kFragment;
  const size_t l4 = ip + inet::kIpv6Header;
  if (next == inet::kProtoIcmpv6) {
    if (length < 1) return FrameDrop::kTruncated;
    const uint8_t type = frame[l4];
    if (type != kIcmpNs && type != kIcmpNa) return FrameDrop::kUnsupported;
    return classify_nd(h, frame.data() + l4, length, self, to_group && !to_us, f);
  }
  if (next != inet::kProtoUdp) return FrameDrop::kUnsupported;  // extension headers too
  if (!to_us) return FrameDrop::kNotForUs;
  f.source.family = AF_INET6;
  std::memcpy(f.source.addr.data(), h + 8, 16);
  return classify_udp(frame, h, true, l4, length, self, checked, f);
}

}  // namespace

std::optional<MacAddress> parse_mac(std::string_view text) {
  MacAddress mac;
  if (text.size() != 17) return std::nullopt;
  for (size_t i = 0; i < 6; ++i) {
    auto hex = [](char c) -> int {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      if (c >= 'A' && c <= 'F') return c - 'A' + 10;
      return -1;
    };
    int hi = hex(text[3 * i]), lo = hex(text[3 * i + 1]);
    if (hi < 0 || lo < 0 || (i < 5 && text[3 * i + 2] != ':')) return std::nullopt;
    mac[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return mac;
}

std::string mac_to_string(const MacAddress& mac) {
  char buf[18];
  std::snprintf(buf, sizeof buf, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3],
                mac[4], mac[5]);
  return buf;
}

const char* frame_drop_name(FrameDrop reason) {
  switch (reason) {
    case FrameDrop::kTruncated:
      return "frame_truncated";
    case FrameDrop::kNotForUs:
      return "frame_not_for_us";
    case FrameDrop::kUnsupported:
      return "frame_unsupported";
    case FrameDrop::kBadIpHeader:
      return "frame_bad_ip_header";
    case FrameDrop::kFragment:
      return "frame_fragment";
    case FrameDrop::kBadUdp:
      return "frame_bad_udp";
    case FrameDrop::kBadArp:
      return "frame_bad_arp";
    case FrameDrop::kBadNd:
      return "frame_bad_nd";
    case FrameDrop::kCount:
      break;
  }
  return "unknown";
}

Result<Frame, FrameDrop> classify_frame(std::span<const uint8_t> frame, const UnderlayAddress& self,
                                        RxChecked checked) {
  if (frame.size() < kEthernetHeader) return FrameDrop::kTruncated;
  const uint8_t* dst = frame.data();
  // Ours, broadcast (ARP) or an IPv6 multicast group (33:33:..., ND); the IP
  // layer decides which groups are ours.
  if (!same(dst, self.mac.data(), 6) && !same(dst, kBroadcast.data(), 6) &&
      !(dst[0] == 0x33 && dst[1] == 0x33))
    return FrameDrop::kNotForUs;
  Frame f;
  f.source_mac = mac_at(frame.data() + 6);
  switch (load_be16(frame.data() + 12)) {
    case kEtherArp:
      return classify_arp(frame.subspan(kEthernetHeader), self, f);
    case kEtherIpv4:
      return classify_ipv4(frame, self, checked, f);
    case kEtherIpv6:
      return classify_ipv6(frame, self, checked, f);
    default:
      return FrameDrop::kUnsupported;  // VLAN tags, LLDP, ...
  }
}

namespace {

size_t build_arp(std::span<uint8_t> out, const UnderlayAddress& self, uint16_t op,
                 const MacAddress& to, const uint8_t* target_ip) {
  if (!self.v4 || out.size() < kMinFrame) return 0;
  uint8_t* p = out.data();
  std::memset(p, 0, kMinFrame);
  write_ethernet(p, op == kArpRequest ? kBroadcast : to, self.mac, kEtherArp);
  uint8_t* a = p + kEthernetHeader;
  store_be16(a, 1);
  store_be16(a + 2, kEtherIpv4);
  a[4] = 6;
  a[5] = 4;
  store_be16(a + 6, op);
  std::memcpy(a + 8, self.mac.data(), 6);
  std::memcpy(a + 14, self.v4->addr.data(), 4);
  if (op == kArpReply) std::memcpy(a + 18, to.data(), 6);
  std::memcpy(a + 24, target_ip, 4);
  return kMinFrame;
}

// An NS or NA from self: IPv6 header, the ICMPv6 message with one link-layer
// option, checksum.
size_t build_nd(std::span<uint8_t> out, const UnderlayAddress& self, const MacAddress& eth_to,
                const uint8_t* ip_to, uint8_t type, const uint8_t* target) {
  constexpr size_t kIcmpLength = kNdLength + 8;
  constexpr size_t kLength = kEthernetHeader + inet::kIpv6Header + kIcmpLength;
  if (!self.v6 || out.size() < kLength) return 0;
  uint8_t* p = out.data();
  std::memset(p, 0, kLength);
  write_ethernet(p, eth_to, self.mac, kEtherIpv6);
  uint8_t* h = p + kEthernetHeader;
  h[0] = 0x60;
  store_be16(h + 4, kIcmpLength);
  h[6] = inet::kProtoIcmpv6;
  h[7] = kNdHopLimit;
  std::memcpy(h + 8, self.v6->addr.data(), 16);
  std::memcpy(h + 24, ip_to, 16);
  uint8_t* icmp = h + inet::kIpv6Header;
  icmp[0] = type;
  if (type == kIcmpNa) store_be32(icmp + 4, kNaSolicitedOverride);
  std::memcpy(icmp + 8, target, 16);
  icmp[kNdLength] = type == kIcmpNs ? kOptSourceLink : kOptTargetLink;
  icmp[kNdLength + 1] = 1;
  std::memcpy(icmp + kNdLength + 2, self.mac.data(), 6);
  inet::store_checksum(
      icmp + 2,
      inet::sum(icmp, kIcmpLength, inet::pseudo_header(h, true, inet::kProtoIcmpv6, kIcmpLength)));
  return kLength;
}

}  // namespace

size_t build_arp_reply(std::span<uint8_t> out, const UnderlayAddress& self, const Frame& request) {
  return build_arp(out, self, kArpReply, request.neighbor_mac, request.neighbor_ip.data());
}

size_t build_arp_request(std::span<uint8_t> out, const UnderlayAddress& self,
                         const std::array<uint8_t, 4>& target) {
  return build_arp(out, self, kArpRequest, kBroadcast, target.data());
}

size_t build_neighbor_advert(std::span<uint8_t> out, const UnderlayAddress& self,
                             const Frame& solicitation) {
  if (!self.v6) return 0;
  return build_nd(out, self, solicitation.neighbor_mac, solicitation.neighbor_ip.data(), kIcmpNa,
                  self.v6->addr.data());
}

size_t build_neighbor_solicit(std::span<uint8_t> out, const UnderlayAddress& self,
                              const std::array<uint8_t, 16>& target) {
  const std::array<uint8_t, 16> group = solicited_node(target);
  const MacAddress eth = {0x33, 0x33, group[12], group[13], group[14], group[15]};
  return build_nd(out, self, eth, group.data(), kIcmpNs, target.data());
}

bool on_link(const UnderlayAddress& self, sa_family_t family, const std::array<uint8_t, 16>& ip) {
  static constexpr std::array<uint8_t, 16> kZero{};
  if (family == AF_INET)
    return self.v4 && !same(ip.data(), kZero.data(), 4) &&
           in_prefix(ip.data(), self.v4->addr.data(), self.v4->prefix, 32);
  if (family == AF_INET6)
    return self.v6 && ip != kZero &&
           ((ip[0] == 0xfe && (ip[1] & 0xc0) == 0x80) ||
            in_prefix(ip.data(), self.v6->addr.data(), self.v6->prefix, 128));
  return false;
}

std::optional<Endpoint> next_hop(const UnderlayAddress& self, const Endpoint& to) {
  Endpoint hop;
  hop.family = to.family;
  if (to.family == AF_INET && self.v4) {
    if (in_prefix(to.addr.data(), self.v4->addr.data(), self.v4->prefix, 32)) {
      std::memcpy(hop.addr.data(), to.addr.data(), 4);
      return hop;
    }
    if (!self.v4->gateway) return std::nullopt;
    std::memcpy(hop.addr.data(), self.v4->gateway->data(), 4);
    return hop;
  }
  if (to.family == AF_INET6 && self.v6) {
    if (in_prefix(to.addr.data(), self.v6->addr.data(), self.v6->prefix, 128)) {
      hop.addr = to.addr;
      return hop;
    }
    if (!self.v6->gateway) return std::nullopt;
    hop.addr = *self.v6->gateway;
    return hop;
  }
  return std::nullopt;
}

uint8_t* encapsulate(uint8_t* payload, size_t length, const UnderlayAddress& self,
                     const MacAddress& via, const Endpoint& to, bool ip_offload, bool l4_offload) {
  const bool v6 = to.family == AF_INET6;
  if (v6 ? !self.v6 : (to.family != AF_INET || !self.v4)) return nullptr;
  const size_t ip_header = v6 ? inet::kIpv6Header : inet::kIpv4Header;
  const size_t udp_length = inet::kUdpHeader + length;
  if (udp_length + (v6 ? 0 : ip_header) > 0xffff) return nullptr;
  uint8_t* u = payload - inet::kUdpHeader;
  uint8_t* h = u - ip_header;
  uint8_t* frame = h - kEthernetHeader;
  const uint32_t udp_len = static_cast<uint32_t>(udp_length);
  // The checksums are summed from the values written, not read back from the
  // headers: a wide load over bytes stored a moment before waits for every one
  // of those stores to reach the cache, three times a packet. Only the payload,
  // written long before (sealed with the rest of the burst), is read. With
  // this and sum()'s 32-byte steps together, an lcore sending 64-byte packets
  // went from 0.79-0.81 of the in-memory pipeline's rate to 0.84-0.85
  // (dpdk_bench).
  const uint8_t* src = v6 ? self.v6->addr.data() : self.v4->addr.data();
  uint64_t addrs;  // under 2^35: the 16-bit fields below add without a carry out
  if (v6) {
    addrs = inet::sum(to.addr.data(), 16, inet::sum(src, 16));
  } else {
    // Each address as one 32-bit word: modulo 0xffff, the sum of its two
    // 16-bit words, which is all a one's-complement sum keeps.
    uint32_t from_word, to_word;
    std::memcpy(&from_word, src, 4);
    std::memcpy(&to_word, to.addr.data(), 4);
    addrs = uint64_t{from_word} + to_word;
  }
  write_ethernet(frame, via, self.mac, v6 ? kEtherIpv6 : kEtherIpv4);
  if (v6) {
    store_be32(h, 0x60000000);
    store_be16(h + 4, udp_len);
    h[6] = inet::kProtoUdp;
    h[7] = kDefaultTtl;
    std::memcpy(h + 8, src, 16);
    std::memcpy(h + 24, to.addr.data(), 16);
  } else {
    const uint32_t total = static_cast<uint32_t>(ip_header) + udp_len;
    constexpr uint32_t kVersionIhl = 0x4500;
    constexpr uint32_t kId = 0, kFlags = 0x4000;  // DF, id 0 (RFC 6864: an atomic datagram)
    constexpr uint32_t kTtlProto = uint32_t{kDefaultTtl} << 8 | inet::kProtoUdp;
    store_be16(h, kVersionIhl);
    store_be16(h + 2, total);
    store_be16(h + 4, kId);
    store_be16(h + 6, kFlags);
    store_be16(h + 8, kTtlProto);
    std::memcpy(h + 12, src, 4);
    std::memcpy(h + 16, to.addr.data(), 4);
    if (ip_offload)
      store_be16(h + 10, 0);
    else
      inet::store_checksum(h + 10, addrs + inet::field(kVersionIhl) + inet::field(total) +
                                       inet::field(kId) + inet::field(kFlags) +
                                       inet::field(kTtlProto));
  }
  store_be16(u, self.port);
  store_be16(u + 2, to.port);
  store_be16(u + 4, udp_len);
  const uint64_t pseudo = addrs + inet::field(inet::kProtoUdp) + inet::field(udp_len);
  if (l4_offload) {
    inet::store_folded(u + 6, pseudo);
  } else {
    const uint64_t header =
        inet::field(self.port) + inet::field(to.port) + inet::field(udp_len);  // checksum 0
    inet::store_udp_checksum(u + 6, inet::sum(payload, length, pseudo + header));
  }
  return frame;
}

bool NeighborTable::learn(sa_family_t family, const std::array<uint8_t, 16>& ip,
                          const MacAddress& mac, Nanos now, bool create, bool override) {
  auto it = entries_.find({family, ip});
  if (it == entries_.end()) {
    if (!create || entries_.size() >= kMaxEntries) return false;
    it = entries_.emplace(Key{family, ip}, Entry{}).first;
  }
  Entry& e = it->second;
  if (e.mac && !override && *e.mac != mac) return false;
  e.mac = mac;
  e.confirmed = now;
  return true;
}

NeighborTable::Entry& NeighborTable::entry(sa_family_t family, const std::array<uint8_t, 16>& ip,
                                           Nanos now) {
  auto it = entries_.find({family, ip});
  if (it == entries_.end()) {
    if (entries_.size() >= kMaxEntries) {
      auto oldest = std::min_element(entries_.begin(), entries_.end(), [](auto& a, auto& b) {
        return a.second.confirmed < b.second.confirmed;
      });
      entries_.erase(oldest);
    }
    it = entries_.emplace(Key{family, ip}, Entry{}).first;
    it->second.confirmed = now;  // forgotten after kForget if never answered
  }
  return it->second;
}

void NeighborTable::expect(sa_family_t family, const std::array<uint8_t, 16>& ip, Nanos now) {
  entry(family, ip, now);
}

NeighborTable::Lookup NeighborTable::lookup(const Endpoint& ip, Nanos now) {
  Lookup out;
  Entry& e = entry(ip.family, ip.addr, now);
  out.mac = e.mac;
  const bool fresh = e.mac && now - e.confirmed < kReachable;
  if (!fresh && (!e.asked || now - *e.asked >= kRequestInterval)) {
    e.asked = now;
    out.ask = true;
  }
  return out;
}

void NeighborTable::expire(Nanos now) {
  std::erase_if(entries_, [now](const auto& kv) { return now - kv.second.confirmed >= kForget; });
}

size_t NeighborTable::size() const {
  return entries_.size();
}

}  // namespace faraday::dataplane
