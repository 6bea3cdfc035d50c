// fuzz_gro: any burst of decrypted inner packets through the TUN write planner.
// The input is split into packets at each 0xff 0xfe pair; a leading byte
// chooses whether to repair each packet's IPv4/TCP checksums first, so the
// fuzzer reaches the coalescing paths instead of stopping at a bad checksum.
// Each packet sits at the very end of its own heap buffer, so ASan catches any
// read past it. The burst is planned write by write, as the TUN port does;
// every plan must cover 1..remaining packets, describe a super-packet that
// fits the kernel's limits, and never touch a packet it does not coalesce.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <vector>

#include "dataplane/gro.h"
#include "tests/fuzz/checksum_oracle.h"

namespace {

using namespace faraday::dataplane;

using namespace faraday::fuzz;

// Makes the IPv4 header checksum and the TCP checksum of a plain TCP packet
// valid, where the packet is long enough to have them.
void repair(uint8_t* p, size_t n) {
  size_t ihl;
  uint32_t pseudo;
  if (n >= 40 && p[0] >> 4 == 4) {
    ihl = (p[0] & 0x0f) * 4u;
    if (ihl < 20 || n < ihl + 20) return;
    put16(p + 10, 0);
    put16(p + 10, static_cast<uint16_t>(~fold16(sum16(p, ihl, 0))));
    pseudo = sum16(p + 12, 8, 0);
  } else if (n >= 60 && p[0] >> 4 == 6) {
    ihl = 40;
    pseudo = sum16(p + 8, 32, 0);
  } else {
    return;
  }
  size_t tcp_len = n - ihl;
  pseudo += 6 + static_cast<uint32_t>(tcp_len);
  put16(p + ihl + 16, 0);
  put16(p + ihl + 16, static_cast<uint16_t>(~fold16(sum16(p + ihl, tcp_len, pseudo))));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  bool fix = data[0] & 1;
  ++data;
  --size;

  std::vector<std::unique_ptr<uint8_t[]>> buffers;
  std::vector<std::vector<uint8_t>> copies;
  std::vector<Packet> pkts;
  size_t start = 0;
  for (size_t i = 0; i <= size && pkts.size() < kBurstSize; ++i) {
    bool split = i == size || (i + 1 < size && data[i] == 0xff && data[i + 1] == 0xfe);
    if (!split) continue;
    size_t len = std::min<size_t>(i - start, kMaxDatagram);
    // A buffer exactly as long as the packet, so the packet's end is the buffer's.
    buffers.push_back(std::make_unique<uint8_t[]>(len + 1));
    Packet p;
    p.base = buffers.back().get();
    p.capacity = static_cast<uint32_t>(len + 1);
    p.offset = 1;
    p.length = static_cast<uint32_t>(len);
    std::memcpy(p.data(), data + start, len);
    if (fix) repair(p.data(), len);
    copies.emplace_back(p.data(), p.data() + len);
    pkts.push_back(p);
    start = i + 2;
  }

  std::span<Packet> rest(pkts);
  size_t at = 0;
  while (!rest.empty()) {
    TunWrite w = plan_tun_write(rest);
    if (w.count < 1 || w.count > rest.size() || w.count > kGroMaxSegments) __builtin_trap();
    if (w.count == 1) {
      if (w.hdr.gso_type != kVirtioNetHdrGsoNone || w.hdr.flags != 0) __builtin_trap();
      if (std::memcmp(rest[0].data(), copies[at].data(), rest[0].length) != 0) __builtin_trap();
    } else {
      size_t total = rest[0].length;
      for (size_t i = 1; i < w.count; ++i) {
        uint32_t off = tcp_payload_offset(rest[i]);
        if (off >= rest[i].length) __builtin_trap();  // payload > 0
        if (rest[i].length - off > w.hdr.gso_size) __builtin_trap();
        total += rest[i].length - off;
      }
      if (total > kGroMaxLength || w.hdr.hdr_len >= rest[0].length) __builtin_trap();
      if (rest[0].length - w.hdr.hdr_len != w.hdr.gso_size) __builtin_trap();
      for (size_t i = 1; i < w.count; ++i) {
        if (std::memcmp(rest[i].data(), copies[at + i].data(), rest[i].length) != 0) {
          __builtin_trap();  // only the first packet of a run is rewritten
        }
      }
    }
    at += w.count;
    rest = rest.subspan(w.count);
  }
  return 0;
}
