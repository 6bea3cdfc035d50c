// packet.h: the caller-owned packet buffer that every burst API of the data path
// takes. Buffers are allocated once (PacketArena) and reused; nothing in the data
// path allocates per packet.
//
// Layout of one buffer: [headroom | payload | tailroom]. The WireGuard transport
// header (16 bytes) is prepended into the headroom and the Poly1305 tag plus
// padding appended into the tailroom, so encryption happens in place.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "dataplane/net.h"

namespace faraday::dataplane {

inline constexpr uint32_t kHeadroom = 32;        // >= transport header (16)
inline constexpr uint32_t kTailroom = 32;        // >= tag (16) + padding (15)
inline constexpr uint32_t kMaxDatagram = 65535;  // largest UDP payload we accept
inline constexpr uint32_t kBufferSize = kHeadroom + kMaxDatagram + kTailroom;
inline constexpr size_t kBurstSize = 64;  // the declared batch size

struct Packet {
  uint8_t* base = nullptr;  // start of the buffer (kBufferSize bytes)
  uint32_t offset = 0;      // payload starts at base + offset
  uint32_t length = 0;      // payload bytes
  Endpoint endpoint;        // underlay source on receive, destination on send

  uint8_t* data() { return base + offset; }
  const uint8_t* data() const { return base + offset; }
  std::span<uint8_t> bytes() { return {data(), length}; }
  std::span<const uint8_t> bytes() const { return {data(), length}; }
  // Resets the payload to empty at the standard headroom.
  void reset() {
    offset = kHeadroom;
    length = 0;
    endpoint = {};
  }
};

// A fixed set of buffers allocated once. Not thread-safe: one owner.
class PacketArena {
 public:
  explicit PacketArena(size_t count)
      : storage_(std::make_unique_for_overwrite<uint8_t[]>(count * kBufferSize)), packets_(count) {
    for (size_t i = 0; i < count; ++i) {
      packets_[i].base = storage_.get() + i * kBufferSize;
      packets_[i].reset();
    }
  }
  std::span<Packet> packets() { return packets_; }
  size_t size() const { return packets_.size(); }

 private:
  std::unique_ptr<uint8_t[]> storage_;
  std::vector<Packet> packets_;
};

}  // namespace faraday::dataplane
