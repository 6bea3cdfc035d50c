// fuzz_tso: any virtio_net_hdr and bytes, as a TUN read, through the TSO splitter.
// Input: 10 bytes of header, one byte of options (bit 0: make the IP length
// field agree with the data so the fuzzer gets past it; bits 1-7: the first
// segment to produce), one byte choosing the slots (count and size), then the
// IP packet. The packet sits at the very end of its own heap buffer and every
// slot is its own allocation, so ASan catches any access past either.
// Invariants: a parsed plan is consistent with the data; every produced packet
// starts at kHeadroom, fits its slot and is as long as the plan says; the
// segments' lengths add up to the packet; and a super-packet's segments carry
// valid IPv4 header and L4 checksums (checked by a separate textbook routine).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <span>
#include <vector>

#include "dataplane/tso.h"
#include "tests/fuzz/checksum_oracle.h"

namespace {

using namespace faraday::dataplane;

using namespace faraday::fuzz;

void check(bool ok) {
  if (!ok) std::abort();
}

// Sets the IPv4 total length or IPv6 payload length from the data.
void agree_length(uint8_t* p, size_t n) {
  if (n >= 20 && p[0] >> 4 == 4) {
    p[2] = static_cast<uint8_t>(n >> 8);
    p[3] = static_cast<uint8_t>(n);
  } else if (n >= 40 && p[0] >> 4 == 6) {
    p[4] = static_cast<uint8_t>((n - 40) >> 8);
    p[5] = static_cast<uint8_t>(n - 40);
  }
}

// A segment of a TCP or UDP super-packet: lengths and checksums as a receiver
// checks them.
void check_segment(const TsoPlan& plan, const Packet& p) {
  const uint8_t* ip = p.data();
  size_t l4_length = p.length - plan.ip_header;
  uint32_t pseudo;
  if (plan.ipv6) {
    check(static_cast<size_t>(ip[4] << 8 | ip[5]) + 40 == p.length);
    pseudo = sum16(ip + 8, 32, 0) + ip[6];
  } else {
    check(static_cast<size_t>(ip[2] << 8 | ip[3]) == p.length);
    check(fold16(sum16(ip, 20, 0)) == 0xffff);
    pseudo = sum16(ip + 12, 8, 0) + ip[9];
  }
  pseudo += static_cast<uint32_t>(l4_length);
  check(fold16(sum16(ip + plan.ip_header, l4_length, pseudo)) == 0xffff);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < sizeof(VirtioNetHdr) + 2) return 0;
  VirtioNetHdr hdr;
  std::memcpy(&hdr, data, sizeof(hdr));
  uint8_t options = data[sizeof(hdr)];
  uint8_t slots_choice = data[sizeof(hdr) + 1];
  size_t n = size - sizeof(hdr) - 2;
  auto buffer = std::make_unique<uint8_t[]>(n + 1);  // never empty; the packet ends it
  uint8_t* pkt = buffer.get() + 1;
  std::memcpy(pkt, data + sizeof(hdr) + 2, n);
  if (options & 1) agree_length(pkt, n);

  auto plan = tso_parse(hdr, std::span<uint8_t>(pkt, n));
  if (!plan) return 0;
  check(plan->segments >= 1 && plan->segments <= kTsoMaxSegments);
  check(plan->header <= plan->length && plan->length == n);
  size_t total = 0;
  for (uint32_t i = 0; i < plan->segments; ++i) total += plan->segment_length(i) - plan->header;
  check(total + plan->header == n);

  // 1..64 slots of 64 bytes past the head- and tailroom up to a jumbo slot.
  size_t count = 1 + (slots_choice & 0x3f);
  uint32_t capacity = (slots_choice & 0x40) ? slot_size(1420) : slot_size(9000);
  if (slots_choice & 0x80) capacity = kHeadroom + kTailroom + 64 + (options & 0xfe) * 8u;
  std::vector<std::unique_ptr<uint8_t[]>> storage;
  std::vector<Packet> out(count);
  for (Packet& p : out) {
    storage.push_back(std::make_unique<uint8_t[]>(capacity));
    p.base = storage.back().get();
    p.capacity = capacity;
  }
  uint32_t first = (options >> 1) % plan->segments;
  auto made = tso_segment(*plan, std::span<const uint8_t>(pkt, n), first, out);
  if (!made) return 0;
  check(*made == std::min<size_t>(count, plan->segments - first));
  for (size_t k = 0; k < *made; ++k) {
    const Packet& p = out[k];
    check(p.offset == kHeadroom && p.length <= p.max_payload());
    check(p.length == plan->segment_length(first + static_cast<uint32_t>(k)));
    if (plan->kind != TsoPlan::Kind::kWhole) check_segment(*plan, p);
  }
  return 0;
}
