#include "dataplane/replay.h"

#include <algorithm>

namespace faraday::dataplane {

static_assert((ReplayWindow::kBits & (ReplayWindow::kBits - 1)) == 0);
static_assert(ReplayWindow::kRejectAfterMessages == 0xffffffffffffdfffULL);

ReplayResult ReplayWindow::accept(uint64_t counter) {
  if (counter >= kRejectAfterMessages) return ReplayResult::kLimit;
  const uint64_t n = counter + 1;  // no overflow: counter < 2^64 - 2^13 - 1
  if (n + kWindow < top_) return ReplayResult::kTooOld;

  const uint64_t block = n / 64;
  if (n > top_) {
    // Slide: clear every block between the current top block (exclusive) and
    // the new one (inclusive); at most the whole ring.
    const uint64_t current = top_ / 64;
    const uint64_t skip = std::min(block - current, kBlocks);
    for (uint64_t i = 1; i <= skip; ++i) blocks_[(current + i) % kBlocks] = 0;
    top_ = n;
  }
  uint64_t& word = blocks_[block % kBlocks];
  const uint64_t bit = uint64_t{1} << (n % 64);
  if (word & bit) return ReplayResult::kDuplicate;
  word |= bit;
  return ReplayResult::kAccepted;
}

void ReplayWindow::reset() {
  top_ = 0;
  blocks_.fill(0);
}

}  // namespace faraday::dataplane
