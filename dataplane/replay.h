// replay.h: the anti-replay window for transport data counters, RFC 6479 style.
//
// Counters up to kWindow (8128) behind the greatest accepted one are still
// accepted once each; older ones are kTooOld. This matches the Linux driver and
// wireguard-go, so a stock peer's reordering tolerance is the same here.
//
// Call accept() (or mark()) only after the packet has authenticated: an
// unauthenticated counter must never move the window.
//
// Threading: accept() may run on any number of threads at once for the same
// window (RX workers decrypting packets of one keypair), without a lock and
// without allocating. Whatever the interleaving:
//  - a counter is kAccepted by at most one call, ever (until reset());
//  - kDuplicate means some call has accepted that very counter;
//  - kTooOld means some call has accepted a counter more than kWindow ahead;
//  - so a counter that no other call accepts, with nothing more than kWindow
//    ahead of it accepted, is kAccepted;
//  - a call that overlaps one moving the window far ahead may still accept a
//    counter the move leaves behind (once, as above): the edge is exact only
//    against calls that finished before this one started;
//  - with no concurrency (each call finishes before the next starts, on one
//    thread or handed over with the usual happens-before) the results are
//    exactly those of the plain sequential window, which
//    tests/dataplane/replay_test.cpp keeps a copy of and compares against.
//  - mark() and raise() (accept() in two steps) keep the first four
//    promises, but not the sequential one: between them the edge lags, as
//    against a concurrent call. Even on one thread, mark(10000) then
//    mark(5) accepts 5, which accept() would call kTooOld; once
//    raise(10000) has run, 5 is kTooOld.
// greatest() and has_accepted() may be read from any thread; they may not yet
// show an accept() still in progress, nor a mark() not yet raised.
// reset() is not safe against concurrent calls: call it only when no other
// thread uses the window (nothing outside the tests calls it today; a new
// keypair gets a new window).
#pragma once

#include <array>
#include <atomic>
#include <cstdint>

namespace faraday::dataplane {

enum class ReplayResult : uint8_t {
  kAccepted,   // new counter, now marked as seen
  kDuplicate,  // seen before (a replay or a duplicate on the wire)
  kTooOld,     // more than kWindow behind the greatest accepted counter
  kLimit,      // >= kRejectAfterMessages: the keypair must not accept it
};

class ReplayWindow {
 public:
  static constexpr uint64_t kBits = 8192;          // counters the ring covers
  static constexpr uint64_t kWindow = kBits - 64;  // 8128, as the Linux driver
  // REJECT_AFTER_MESSAGES from the whitepaper: 2^64 - 2^13 - 1. Counters >= this
  // are kLimit.
  static constexpr uint64_t kRejectAfterMessages = UINT64_MAX - (uint64_t{1} << 13);

  // Checks counter and marks it seen when accepted. Never moves the window
  // unless the result is kAccepted. Lock-free: a call retries only when another
  // call changed the same slot.
  ReplayResult accept(uint64_t counter);
  // accept() in two steps, for a burst: mark() checks and marks a counter as
  // accept() does but leaves the edge where it is; raise() then moves the edge
  // up to a counter mark() accepted, if it is the greatest so far. A worker
  // marks each packet of a burst and raises once per keypair, with the
  // burst's greatest: the edge is written by every worker receiving from the
  // peer, and one write per packet made its cache line move between cores per
  // packet. Until the raise, later marks see the edge as it was, as they see
  // it against a concurrent accept(): a counter the lag leaves inside the edge
  // is still accepted at most once.
  ReplayResult mark(uint64_t counter);
  void raise(uint64_t counter);
  // Back to the initial state: nothing seen, every counter below the limit new.
  // Only while no other thread uses the window.
  void reset();
  // The highest counter accepted so far. 0 both when nothing has been accepted
  // and when only counter 0 has; use has_accepted() to tell them apart.
  uint64_t greatest() const {
    const uint64_t top = top_.load(std::memory_order_relaxed);
    return top == 0 ? 0 : top - 1;
  }
  bool has_accepted() const { return top_.load(std::memory_order_relaxed) != 0; }

 private:
  // Counters are stored as n = counter + 1, so that top_ == 0 means "nothing
  // yet". The ring is kSlots words; a word is one slot:
  //   bits 0..7    which of the 8 values of its block were accepted
  //                (bit n % 8 for stored value n);
  //   bits 8..58   the lap, n / kBits, the block belongs to.
  // Block n / 8 lives in slot n / 8 % kSlots. One compare-exchange on one word
  // both checks and marks a counter, so no lock is needed.
  //
  // The lap is stored in full (n < 2^64 - 2^13 makes it < 2^51), never modulo:
  // laps compare as plain integers however far the window jumps, and the
  // all-zero word is "lap 0, nothing seen", the true initial state. With 32-bit
  // blocks only 32 bits would be left for a tag, which wraps after a jump of
  // 2^36 counters and lets a stale slot pass for a current or a newer one (a
  // false kDuplicate or kTooOld; the HugeJumps test). 8 is the widest power of
  // two that leaves room for 51 bits. The price is memory: 8 KiB per window,
  // where 128 plain 64-bit blocks took 1 KiB.
  static constexpr uint64_t kBlockBits = 8;
  static constexpr uint64_t kSlots = kBits / kBlockBits;  // 1024, a power of two
  static constexpr int kLapShift = 8;

  // The greatest stored value accepted, raised after the slot says so (a
  // monotonic max). It is only needed for the exact window edge; the slots
  // alone decide duplicates.
  // Apart from the slots: workers marking slots do not evict each other's top_.
  std::atomic<uint64_t> top_{0};
  alignas(64) std::array<std::atomic<uint64_t>, kSlots> slots_{};
};

}  // namespace faraday::dataplane
