// replay.h: the anti-replay window for transport data counters, RFC 6479 style.
//
// A ring of 128 64-bit blocks (8192 bits). Counters up to kWindow (8128) behind
// the greatest accepted one are still accepted once each; older ones are
// kTooOld. A counter far ahead slides the window, clearing the blocks it skips.
// This matches the Linux driver and wireguard-go, so a stock peer's reordering
// tolerance is the same here.
//
// Call accept() only after the packet has authenticated: an unauthenticated
// counter must never move the window.
//
// Threading: not synchronized. One ReplayWindow belongs to one receiving keypair;
// its owner serializes accept()/reset() (one worker, or a lock the caller holds
// when several RX workers decrypt for the same keypair). greatest() is read under
// the same rule.
#pragma once

#include <array>
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
  static constexpr uint64_t kBits = 8192;
  static constexpr uint64_t kWindow = kBits - 64;  // 8128
  // REJECT_AFTER_MESSAGES from the whitepaper: 2^64 - 2^13 - 1. Counters >= this
  // are kLimit.
  static constexpr uint64_t kRejectAfterMessages = UINT64_MAX - (uint64_t{1} << 13);

  // Checks counter and marks it seen when accepted. Never moves the window
  // unless the result is kAccepted.
  ReplayResult accept(uint64_t counter);
  // Back to the initial state: nothing seen, every counter below the limit new.
  void reset();
  // The highest counter accepted so far. 0 both when nothing has been accepted
  // and when only counter 0 has; use has_accepted() to tell them apart.
  uint64_t greatest() const { return top_ == 0 ? 0 : top_ - 1; }
  bool has_accepted() const { return top_ != 0; }

 private:
  static constexpr uint64_t kBlocks = kBits / 64;  // 128, a power of two

  // Counters are stored as counter + 1 so that 0 means "nothing yet"; top_ is
  // the greatest accepted counter + 1. Bit (n % 64) of block (n / 64 % 128)
  // stands for stored value n.
  uint64_t top_ = 0;
  std::array<uint64_t, kBlocks> blocks_{};
};

}  // namespace faraday::dataplane
