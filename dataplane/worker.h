// worker.h: what one data-path worker owns when several threads run one
// Device's data path at once (device.h): its counters, its AEAD backend, and
// its rings to the handshake context.
//
// A worker never writes state that belongs to the handshake context. What it
// cannot do itself it hands over, without a lock and without allocating:
//  - parcels (bytes that must be kept): handshake messages it received, and
//    inner packets for a peer that has no session yet, to be staged. Each
//    parcel ring owns a fixed arena; a free-list ring returns the buffers.
//  - notes (no bytes): "peer P has new events" (Peer::events holds the bits),
//    "confirm keypair K of P", "P was heard from endpoint E" (roaming).
// Each ring has one producer (the worker) and one consumer (the handshake
// context, Device::service()). A full ring drops what did not fit and counts
// it (Drop::kHandoffFull); a lost events note makes the handshake context scan
// every peer once.
//
// A parcel wakes the control thread at once (Device::set_wake); a note wakes it
// only if this worker has not done so in the last kNoteWakeInterval, so the
// timers hear of traffic within that time and an idle control thread is never
// woken, while a busy one is not woken once per burst.
//
// Notes and parcels name a peer by (slot, id), never by pointer: the peer may
// be removed and freed before the handshake context reads the note.
#pragma once

#include <atomic>
#include <boost/lockfree/spsc_queue.hpp>
#include <cstdint>
#include <span>

#include "crypto/aead_batch.h"
#include "dataplane/clock.h"
#include "dataplane/counters.h"
#include "dataplane/net.h"
#include "dataplane/packet.h"

namespace faraday::dataplane {

class Device;

inline constexpr Nanos kNoteWakeInterval = 10 * kMillisecond;

// Fixed buffers handed from one producer to one consumer and back.
class ParcelRing {
 public:
  static constexpr size_t kMaxCount = 256;
  struct Parcel {
    uint16_t buffer = 0;
    uint32_t length = 0;
    uint32_t slot = 0;  // the peer, for staged packets
    uint64_t peer_id = 0;
    Endpoint endpoint;  // the source, for handshake messages
  };

  ParcelRing(size_t count, uint32_t buffer_size);
  // Producer: copies bytes into a free buffer; false when none is free or the
  // bytes do not fit.
  bool put(std::span<const uint8_t> bytes, const Endpoint& endpoint, uint32_t slot,
           uint64_t peer_id);
  // Consumer: the next parcel and its bytes; give the buffer back with release().
  bool take(Parcel& parcel);
  std::span<uint8_t> bytes(const Parcel& parcel);
  void release(const Parcel& parcel) { free_.push(parcel.buffer); }
  uint32_t buffer_size() const { return buffer_size_; }
  // Producer: buffers free now (the producer alone takes from the free list).
  size_t free_count() const { return free_.read_available(); }
  size_t count() const { return count_; }

 private:
  uint32_t buffer_size_;
  size_t count_;
  PacketArena arena_;
  boost::lockfree::spsc_queue<uint16_t, boost::lockfree::capacity<kMaxCount>> free_;
  boost::lockfree::spsc_queue<Parcel, boost::lockfree::capacity<kMaxCount>> full_;
};

class Worker {
 public:
  // The counters this worker wrote (any thread may read them).
  const Counters& counters() const { return counters_; }

 private:
  friend class Device;
  struct Note {
    enum Kind : uint8_t { kEvents, kConfirm, kRoam } kind = kEvents;
    uint32_t slot = 0;
    uint32_t local_index = 0;  // kConfirm: the keypair
    uint64_t peer_id = 0;
    Endpoint endpoint;  // kRoam
  };
  static constexpr size_t kNotes = 1024;

  // on_control_thread: the Device's own worker, which runs on the handshake
  // context's thread and so may act on the handshake state directly.
  Worker(crypto::AeadBackend& aead, bool on_control_thread, size_t handshakes, size_t staged,
         uint32_t stage_buffer_size);
  bool note(const Note& n);

  crypto::AeadBackend& aead_;
  const bool on_control_thread_;
  Counters counters_;
  ParcelRing handshakes_;
  ParcelRing staged_;
  boost::lockfree::spsc_queue<Note, boost::lockfree::capacity<kNotes>> notes_;
  std::atomic<bool> notes_lost_{false};
  // The last roaming note, so a burst from a new endpoint sends one note: the
  // peer, the endpoint, and the peer's endpoint version when it was sent.
  uint64_t roamed_peer_ = 0;
  Endpoint roamed_to_;
  uint32_t roamed_version_ = 0;
  // When this worker last woke the control thread for a note (at most once per
  // kNoteWakeInterval: an idle control thread sleeps, a busy one polls).
  Nanos last_wake_ = 0;
};

}  // namespace faraday::dataplane
