// fuzz_underlay: any frame through the classifier of an owned NIC (underlay.h),
// or (bit 3 of the first byte) through the L2 side of a TAP faradayd keeps
// (inner_link.h), which answers ARP and ND for any address with the same
// parsers. The first input byte also sets what the "NIC" verified (bits 0 and
// 1) and whether to repair an ICMPv6 checksum first (bit 2), so the fuzzer
// reaches the neighbour-discovery option parser instead of stopping at a bad
// checksum. The
// frame sits at the very end of its own heap buffer, so ASan catches any read
// past it. A kept frame must point inside itself, and what it asks for must be
// answerable: an ARP request's reply and an NS's advertisement are built and
// must classify as such at the asker.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <span>

#include "dataplane/inet.h"
#include "dataplane/inner_link.h"
#include "dataplane/underlay.h"

namespace {

using namespace faraday::dataplane;

UnderlayAddress self() {
  UnderlayAddress a;
  a.mac = {0x02, 0, 0, 0, 0, 2};
  a.port = 51820;
  a.v4 = UnderlayAddress::V4{{10, 0, 0, 2}, 24, std::array<uint8_t, 4>{10, 0, 0, 254}};
  a.v6 = UnderlayAddress::V6{{0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2}, 64, {}};
  return a;
}

void repair_icmpv6(uint8_t* f, size_t n) {
  const size_t ip = kEthernetHeader, icmp = ip + inet::kIpv6Header;
  if (n < icmp + 4 || inet::load_be16(f + 12) != 0x86dd || f[ip + 6] != inet::kProtoIcmpv6) return;
  const size_t length = inet::load_be16(f + ip + 4);
  if (n < icmp + length || length < 4) return;
  inet::store_be16(f + icmp + 2, 0);
  inet::store_checksum(f + icmp + 2, inet::sum(f + icmp, length,
                                               inet::pseudo_header(f + ip, true, inet::kProtoIcmpv6,
                                                                   static_cast<uint32_t>(length))));
}

// The asker, as the answer's classifier sees it.
UnderlayAddress asker(const Frame& f) {
  UnderlayAddress a;
  a.mac = f.neighbor_mac;
  a.port = 1;
  if (f.neighbor_family == AF_INET) {
    a.v4 = UnderlayAddress::V4{};
    std::memcpy(a.v4->addr.data(), f.neighbor_ip.data(), 4);
  } else {
    a.v6 = UnderlayAddress::V6{f.neighbor_ip, 128, {}};
  }
  return a;
}

// The TAP side: an answer comes from our MAC and fits its buffer; a packet is
// more than its Ethernet header; nothing else writes an answer.
void fuzz_inner(const uint8_t* frame, size_t n, const MacAddress& ours) {
  InnerLink link(ours, MacAddress{});
  std::array<uint8_t, InnerLink::kControlFrameSize> answer{};
  size_t length = 0;
  const InnerLink::Rx rx = link.receive({frame, n}, answer, length);
  if (rx == InnerLink::Rx::kAnswer && (length < kEthernetHeader + 28 || length > answer.size() ||
                                       std::memcmp(answer.data() + 6, ours.data(), 6) != 0))
    std::abort();
  if (rx != InnerLink::Rx::kAnswer && length != 0) std::abort();
  if (rx == InnerLink::Rx::kPacket && n <= kEthernetHeader) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t flags = data[0];
  const size_t n = size - 1;
  auto buf = std::make_unique<uint8_t[]>(n + 1);  // n may be 0
  uint8_t* frame = buf.get();
  std::memcpy(frame, data + 1, n);
  if (flags & 4) repair_icmpv6(frame, n);
  static const UnderlayAddress me = self();
  if (flags & 8) {
    fuzz_inner(frame, n, me.mac);
    return 0;
  }
  auto r = classify_frame({frame, n}, me, {(flags & 1) != 0, (flags & 2) != 0});
  if (!r.ok()) {
    if (r.failure() >= FrameDrop::kCount) std::abort();
    return 0;
  }
  const Frame& f = *r;
  uint8_t answer[128];
  switch (f.kind) {
    case Frame::Kind::kDatagram:
      if (f.payload_offset > n || f.payload_length > n - f.payload_offset) std::abort();
      break;
    case Frame::Kind::kArpRequest: {
      size_t len = build_arp_reply(answer, me, f);
      auto back = classify_frame({answer, len}, asker(f));
      if (!back.ok() || back->kind != Frame::Kind::kArpReply || back->neighbor_mac != me.mac)
        std::abort();
      break;
    }
    case Frame::Kind::kSolicitation: {
      size_t len = build_neighbor_advert(answer, me, f);
      if (len == 0) std::abort();
      break;
    }
    case Frame::Kind::kArpReply:
    case Frame::Kind::kAdvertisement:
      break;
  }
  return 0;
}
