#include "dataplane/replay.h"

namespace faraday::dataplane {

static_assert((ReplayWindow::kBits & (ReplayWindow::kBits - 1)) == 0);
static_assert(ReplayWindow::kRejectAfterMessages == 0xffffffffffffdfffULL);
static_assert(std::atomic<uint64_t>::is_always_lock_free);

// Why this is right.
//
// Every write to a slot is the acceptance of one counter, by one successful
// compare-exchange: either it adds the counter's bit to a slot already on the
// counter's lap, or it moves a slot on an earlier lap to the counter's lap with
// only that bit. So a slot's lap never decreases, and while it stays the same
// its bits are only ever added: the word only grows as an integer, no value
// comes back, and compare-exchange cannot be fooled by ABA.
//
// Never twice. All read-modify-writes of one slot are totally ordered (its
// modification order), whatever the memory order. After the write that accepts
// n, the slot is on lap(n) with n's bit set, or on a later lap, for good; a
// second acceptance would need a slot on an earlier lap, or on lap(n) without
// the bit.
//
// Sequentially, the results are today's. Those are fixed by the set of counters
// accepted so far and its maximum, top: kTooOld if n + kWindow < top, else
// kDuplicate exactly when n is in the set. Suppose n passes the edge check,
// n + kWindow >= top. A counter m sharing n's slot on a later lap has block(m)
// >= block(n) + kSlots, so m >= n - 7 + kBits > n + kWindow >= top, and cannot
// have been accepted. So the slot is either on lap(n), and its bit says exactly
// whether n was accepted, or on an earlier lap, and nothing of n's block was.
// The "later lap" branch below never fires sequentially; concurrently it fires
// only once some call has accepted a counter more than kWindow ahead, which is
// what kTooOld means.
//
// Memory order: relaxed throughout. The words carry no other data to publish,
// and one slot's read-modify-writes are ordered anyway. A call that happens
// after another (same thread, or handed over through a queue with
// release/acquire) sees that call's writes to the slot and to top_ by
// coherence alone, so sequential use stays exact. top_ is raised after the slot
// write and read without ordering: read stale, it only lets a counter the window
// has just left behind through to its slot, which still refuses duplicates.
// mark() then raise() is accept() with the raise put off: until it comes, the
// edge lags as it does when read stale, with the same consequence.
ReplayResult ReplayWindow::accept(uint64_t counter) {
  const ReplayResult result = mark(counter);
  if (result == ReplayResult::kAccepted) raise(counter);
  return result;
}

ReplayResult ReplayWindow::mark(uint64_t counter) {
  if (counter >= kRejectAfterMessages) return ReplayResult::kLimit;
  const uint64_t n = counter + 1;  // no overflow: counter < 2^64 - 2^13 - 1
  if (n + kWindow < top_.load(std::memory_order_relaxed)) return ReplayResult::kTooOld;

  const uint64_t lap = n / kBits;
  const uint64_t bit = uint64_t{1} << (n % kBlockBits);
  std::atomic<uint64_t>& slot = slots_[n / kBlockBits % kSlots];
  uint64_t word = slot.load(std::memory_order_relaxed);
  for (;;) {
    const uint64_t word_lap = word >> kLapShift;
    uint64_t next;
    if (word_lap > lap) return ReplayResult::kTooOld;
    if (word_lap == lap) {
      if (word & bit) return ReplayResult::kDuplicate;
      next = word | bit;
    } else {
      next = (lap << kLapShift) | bit;  // the slot's old block left the window
    }
    if (slot.compare_exchange_weak(word, next, std::memory_order_relaxed)) break;
  }
  return ReplayResult::kAccepted;
}

void ReplayWindow::raise(uint64_t counter) {
  const uint64_t n = counter + 1;
  uint64_t top = top_.load(std::memory_order_relaxed);
  while (top < n && !top_.compare_exchange_weak(top, n, std::memory_order_relaxed)) {
  }
}

void ReplayWindow::reset() {
  top_.store(0, std::memory_order_relaxed);
  for (auto& slot : slots_) slot.store(0, std::memory_order_relaxed);
}

}  // namespace faraday::dataplane
