// packet.h: the caller-owned packet buffer that every burst API of the data path
// takes. Buffers are allocated once (PacketArena) and reused; nothing in the data
// path allocates per packet.
//
// Layout of one buffer: [headroom | payload | tailroom]. The WireGuard transport
// header (16 bytes) is prepended into the headroom and the Poly1305 tag plus
// padding appended into the tailroom, so encryption happens in place.
//
// Buffers are sized to what they carry: a slot for an interface's packets holds
// one inner packet of its MTU (at least a jumbo frame's) as a WireGuard
// datagram, about 9 KiB, not the 64 KiB of the largest UDP payload. Ports drop
// and count what does not fit their slots.
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
inline constexpr uint32_t kBufferSize = kHeadroom + kMaxDatagram + kTailroom;  // any datagram
inline constexpr size_t kBurstSize = 64;  // the declared batch size
// The smallest inner MTU a slot is sized for, so raising an interface's MTU to a
// jumbo frame's (storage networks use 9000) never outgrows its slots.
inline constexpr uint32_t kJumboMtu = 9000;
// Transport header (16) + tag (16) + padding to 16 (15): what WireGuard adds.
inline constexpr uint32_t kTransportOverhead = 48;

// Bytes for one slot of an interface with this inner MTU, a multiple of 64.
constexpr uint32_t slot_size(uint32_t mtu) {
  uint32_t payload = (mtu > kJumboMtu ? mtu : kJumboMtu) + kTransportOverhead;
  uint32_t size = kHeadroom + (payload > kMaxDatagram ? kMaxDatagram : payload) + kTailroom;
  return (size + 63) / 64 * 64;
}

struct Packet {
  uint8_t* base = nullptr;  // start of the buffer
  uint32_t capacity = 0;    // bytes at base
  uint32_t offset = 0;      // payload starts at base + offset
  uint32_t length = 0;      // payload bytes
  Endpoint endpoint;        // underlay source on receive, destination on send

  uint8_t* data() { return base + offset; }
  const uint8_t* data() const { return base + offset; }
  std::span<uint8_t> bytes() { return {data(), length}; }
  std::span<const uint8_t> bytes() const { return {data(), length}; }
  // The most payload a port may place at kHeadroom, keeping kTailroom behind it.
  uint32_t max_payload() const { return capacity - kHeadroom - kTailroom; }
  // Resets the payload to empty at the standard headroom.
  void reset() {
    offset = kHeadroom;
    length = 0;
    endpoint = {};
  }
};

// A fixed set of `count` buffers of `slot` bytes each (kHeadroom + kTailroom <
// slot), allocated once. Not thread-safe: one owner.
class PacketArena {
 public:
  explicit PacketArena(size_t count, uint32_t slot = kBufferSize)
      : storage_(std::make_unique_for_overwrite<uint8_t[]>(count * slot)), packets_(count) {
    for (size_t i = 0; i < count; ++i) {
      packets_[i].base = storage_.get() + i * slot;
      packets_[i].capacity = slot;
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
