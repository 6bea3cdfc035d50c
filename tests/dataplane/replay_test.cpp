// Anti-replay window: table-driven sequences in the spirit of the Linux driver's
// selftest/counter.c, permutations, randomized comparisons against a set-based
// reference and against the sequential algorithm, and threads sharing a window.
#include "dataplane/replay.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <numeric>
#include <ostream>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace faraday::dataplane {
namespace {

constexpr ReplayResult kOk = ReplayResult::kAccepted;
constexpr ReplayResult kDup = ReplayResult::kDuplicate;
constexpr ReplayResult kOld = ReplayResult::kTooOld;
constexpr ReplayResult kLim = ReplayResult::kLimit;
constexpr uint64_t W = ReplayWindow::kWindow;               // 8128
constexpr uint64_t B = ReplayWindow::kBits;                 // 8192: one trip round the ring
constexpr uint64_t L = ReplayWindow::kRejectAfterMessages;  // first rejected counter

static_assert(W == 8128);
static_assert(L == 18446744073709543423ULL);  // 2^64 - 2^13 - 1

const char* Name(ReplayResult r) {
  switch (r) {
    case ReplayResult::kAccepted:
      return "kAccepted";
    case ReplayResult::kDuplicate:
      return "kDuplicate";
    case ReplayResult::kTooOld:
      return "kTooOld";
    case ReplayResult::kLimit:
      return "kLimit";
  }
  return "?";
}

struct Step {
  uint64_t counter;
  ReplayResult want;
};

struct ReplayCase {
  std::string name;
  std::vector<Step> steps;
  uint64_t greatest;  // after all steps
};

void PrintTo(const ReplayCase& c, std::ostream* os) {
  *os << c.name;
}

std::vector<ReplayCase> ReplayCases() {
  return {
      {"InOrder", {{0, kOk}, {1, kOk}, {2, kOk}, {3, kOk}, {4, kOk}, {5, kOk}}, 5},
      {"ZeroFirst", {{0, kOk}, {0, kDup}, {1, kOk}, {0, kDup}}, 1},
      {"ZeroAfterOthers", {{5, kOk}, {0, kOk}, {0, kDup}}, 5},
      {"Duplicates",
       {{5, kOk}, {5, kDup}, {3, kOk}, {3, kDup}, {5, kDup}, {4, kOk}, {4, kDup}, {6, kOk}},
       6},
      {"OutOfOrderInWindow",
       {{100, kOk},
        {50, kOk},
        {99, kOk},
        {1, kOk},
        {0, kOk},
        {75, kOk},
        {50, kDup},
        {99, kDup},
        {100, kDup},
        {101, kOk},
        {62, kOk},
        {63, kOk},
        {64, kOk},
        {62, kDup},
        {63, kDup},
        {64, kDup},
        {0, kDup},
        {101, kDup}},
       101},
      // 0 is exactly W behind W: still in the window. One more and it falls out,
      // while 1, never seen, is now exactly at the edge.
      {"EdgeFromZero",
       {{W, kOk}, {0, kOk}, {0, kDup}, {W + 1, kOk}, {0, kOld}, {1, kOk}, {1, kDup}, {2, kOk}},
       W + 1},
      {"EdgeAndOnePast",
       {{10000, kOk},
        {10000 - W, kOk},
        {10000 - W - 1, kOld},
        {10000 - W, kDup},
        {10000 - W + 1, kOk},
        {0, kOld}},
       10000},
      {"EdgeAtLargeCounters",
       {{uint64_t{1} << 40, kOk},
        {(uint64_t{1} << 40) - W, kOk},
        {(uint64_t{1} << 40) - W - 1, kOld},
        {(uint64_t{1} << 40) - 1, kOk}},
       uint64_t{1} << 40},
      // Jumps shorter than the window: blocks between the old top and the new one
      // are cleared, but everything seen before the jump that is still inside the
      // window stays seen (kDuplicate); once it falls out it is kTooOld. A counter
      // whose ring bit was used by an old counter before the slide is new again.
      {"JumpKeepsSeenInWindow",
       {
           {200, kOk},
           {8000, kOk},  // clears ring blocks 4..125
           {200, kDup},
           {201, kOk},
           {4000, kOk},
           {8200, kOk},  // wraps: clears ring blocks 126, 127, 0
           {200, kDup},  // 8000 behind: still in the window, still seen
           {199, kOk},   // never seen, in the window
           {8400, kOk},  // clears ring blocks 1..3, where 200 was
           {200, kOld},
           {8392, kOk},  // same ring bit as 200 (8392 = 200 + 8192): not a duplicate
           {8392, kDup},
           {4000, kDup},
           {8300, kOk},  // between the old top and the new one: cleared, never seen
           {8300, kDup},
       },
       8400},
      {"FarJumpClearsEverything",
       {{0, kOk},
        {1, kOk},
        {2, kOk},
        {3, kOk},
        {1000, kOk},
        {1000000, kOk},
        {1000, kOld},
        {3, kOld},
        {1000000 - W, kOk},
        {1000000 - W - 1, kOld},
        {999999, kOk},
        {1000000, kDup},
        {1000000 + B, kOk},  // same ring bit as 1000000, a full ring later
        {1000000, kOld},
        {1000000 + B - W, kOk}},
       1000000 + B},
      {"JumpOfExactlyOneRing",
       {{5, kOk}, {5 + B, kOk}, {5, kOld}, {5 + B - W, kOk}, {5 + B - W - 1, kOld}, {5 + B, kDup}},
       5 + B},
      {"JumpOfManyRings",
       {{5, kOk}, {5 + 1000 * B, kOk}, {5 + 999 * B, kOld}, {5 + 1000 * B - 1, kOk}},
       5 + 1000 * B},
      {"Limit",
       {{L, kLim},
        {L + 1, kLim},
        {UINT64_MAX, kLim},
        {L - 1, kOk},  // the last acceptable counter
        {L, kLim},
        {L - 1, kDup},
        {L - 2, kOk},
        {L - 1 - W, kOk},
        {L - 2 - W, kOld},
        {0, kOld},
        {UINT64_MAX, kLim}},
       L - 1},
      {"LimitDoesNotMoveWindow", {{L, kLim}, {UINT64_MAX, kLim}, {0, kOk}, {1, kOk}}, 1},
      {"TooOldDoesNotMoveWindow", {{W + 10, kOk}, {5, kOld}, {9, kOld}, {10, kOk}}, W + 10},
  };
}

class ReplayTableTest : public ::testing::TestWithParam<ReplayCase> {};

TEST_P(ReplayTableTest, Sequence) {
  const ReplayCase& c = GetParam();
  ReplayWindow w;
  for (size_t i = 0; i < c.steps.size(); ++i) {
    const Step& s = c.steps[i];
    ReplayResult got = w.accept(s.counter);
    EXPECT_EQ(got, s.want) << "step " << i + 1 << ": counter " << s.counter << " gave " << Name(got)
                           << ", want " << Name(s.want);
  }
  EXPECT_EQ(w.greatest(), c.greatest);
  EXPECT_TRUE(w.has_accepted());
}

INSTANTIATE_TEST_SUITE_P(ReplayWindow, ReplayTableTest, ::testing::ValuesIn(ReplayCases()),
                         [](const auto& info) { return info.param.name; });

TEST(ReplayWindow, InitialState) {
  ReplayWindow w;
  EXPECT_FALSE(w.has_accepted());
  EXPECT_EQ(w.greatest(), 0u);
  EXPECT_EQ(w.accept(0), kOk);
  EXPECT_TRUE(w.has_accepted());
  EXPECT_EQ(w.greatest(), 0u);
}

TEST(ReplayWindow, FirstCounterMayBeAnything) {
  ReplayWindow w;
  EXPECT_EQ(w.accept(123456789), kOk);
  EXPECT_EQ(w.greatest(), 123456789u);
  EXPECT_EQ(w.accept(0), kOld);
}

TEST(ReplayWindow, Reset) {
  ReplayWindow w;
  for (uint64_t c : {5, 10, 20000}) EXPECT_EQ(w.accept(c), kOk);
  w.reset();
  EXPECT_FALSE(w.has_accepted());
  EXPECT_EQ(w.greatest(), 0u);
  EXPECT_EQ(w.accept(5), kOk);
  EXPECT_EQ(w.accept(0), kOk);
  EXPECT_EQ(w.accept(10), kOk);
  EXPECT_EQ(w.accept(5), kDup);
  EXPECT_EQ(w.greatest(), 10u);
}

// mark() checks and marks as accept() does, but the edge moves only at
// raise(), and never down. Until then a counter the raise will leave behind
// is still taken once (the lag the header promises), never twice.
TEST(ReplayWindow, MarkLeavesTheEdgeToRaise) {
  ReplayWindow w;
  EXPECT_EQ(w.mark(100), kOk);
  EXPECT_FALSE(w.has_accepted());
  EXPECT_EQ(w.mark(100), kDup);
  w.raise(100);
  EXPECT_EQ(w.greatest(), 100u);
  EXPECT_EQ(w.mark(100 + W + 5), kOk);
  EXPECT_EQ(w.greatest(), 100u);
  EXPECT_EQ(w.mark(4), kOk);  // inside the edge until the raise
  EXPECT_EQ(w.mark(4), kDup);
  w.raise(100 + W + 5);
  w.raise(50);
  EXPECT_EQ(w.greatest(), 100 + W + 5);
  EXPECT_EQ(w.mark(3), kOld);
  EXPECT_EQ(w.mark(4), kOld);
  EXPECT_EQ(w.mark(100 + W + 5), kDup);
  EXPECT_EQ(w.accept(100 + W + 6), kOk);  // accept() is mark() then raise()
  EXPECT_EQ(w.greatest(), 100 + W + 6);
}

// Any order of a whole window's worth of counters is accepted exactly once.
TEST(ReplayWindow, RandomPermutationWithinWindow) {
  std::mt19937_64 rng(6479);
  for (uint64_t base : {uint64_t{0}, uint64_t{1000000}, L - 1 - W}) {
    SCOPED_TRACE("base " + std::to_string(base));
    std::vector<uint64_t> counters(W + 1);  // base .. base + W: exactly one window
    std::iota(counters.begin(), counters.end(), base);
    ReplayWindow w;
    std::shuffle(counters.begin(), counters.end(), rng);
    for (uint64_t c : counters) ASSERT_EQ(w.accept(c), kOk) << c;
    EXPECT_EQ(w.greatest(), base + W);
    std::shuffle(counters.begin(), counters.end(), rng);
    for (uint64_t c : counters) ASSERT_EQ(w.accept(c), kDup) << c;
    if (base > 0) {
      EXPECT_EQ(w.accept(base - 1), kOld);
    }
  }
}

// The same, with the top accepted first, so every other counter arrives late.
TEST(ReplayWindow, RandomPermutationBehindTop) {
  std::mt19937_64 rng(8192);
  const uint64_t top = 5 * B + 17;  // not block aligned
  std::vector<uint64_t> counters(W);
  std::iota(counters.begin(), counters.end(), top - W);
  std::shuffle(counters.begin(), counters.end(), rng);
  ReplayWindow w;
  ASSERT_EQ(w.accept(top), kOk);
  for (uint64_t c : counters) ASSERT_EQ(w.accept(c), kOk) << c;
  std::shuffle(counters.begin(), counters.end(), rng);
  for (uint64_t c : counters) ASSERT_EQ(w.accept(c), kDup) << c;
  EXPECT_EQ(w.accept(top), kDup);
  EXPECT_EQ(w.accept(top - W - 1), kOld);
}

// Random traffic (mostly forward with reordering, some replays, some jumps)
// against the obvious model: a set of seen counters and the greatest one.
TEST(ReplayWindow, RandomAgainstReference) {
  std::mt19937_64 rng(2024);
  ReplayWindow w;
  std::set<uint64_t> seen;
  bool any = false;
  uint64_t greatest = 0;
  uint64_t next = 0;
  for (int i = 0; i < 300000; ++i) {
    uint64_t c;
    switch (rng() % 10) {
      case 0:  // a big jump ahead
        c = next + rng() % (3 * B);
        break;
      case 1:  // a replay of something seen
        c = seen.empty() ? 0 : *seen.lower_bound(rng() % (greatest + 1));
        break;
      case 2:  // anywhere around the window's lower edge
        c = greatest > W + 64 ? greatest - W - 64 + rng() % 128 : rng() % (W + 64);
        break;
      case 3:
      case 4:  // late, inside the window
        c = greatest - std::min<uint64_t>(greatest, rng() % W);
        break;
      default:  // roughly in order, reordered a little
        c = next + rng() % 8;
        next += 4;
        break;
    }
    ReplayResult want;
    if (any && c + W < greatest) {
      want = kOld;
    } else if (seen.count(c)) {
      want = kDup;
    } else {
      want = kOk;
      seen.insert(c);
      if (!any || c > greatest) greatest = c;
      any = true;
      next = std::max(next, c);
    }
    ASSERT_EQ(w.accept(c), want) << "step " << i << " counter " << c;
    ASSERT_EQ(w.greatest(), greatest);
    if (i % 1000 == 0 && greatest > W) seen.erase(seen.begin(), seen.lower_bound(greatest - W));
  }
}

// Jumps of 2^36 and 2^37 counters, and one just short of the whole counter
// space: whatever the window remembers of earlier blocks must not be mistaken
// for the block the new counter lands in (a 32-bit block tag in a 256-slot
// ring would wrap here: a false kDuplicate, or a false kTooOld).
TEST(ReplayWindow, HugeJumps) {
  for (uint64_t jump : {uint64_t{1} << 36, uint64_t{1} << 37, uint64_t{1} << 45, uint64_t{1} << 51,
                        uint64_t{1} << 63, L - 1}) {
    for (int64_t offset : {-8193, -8192, -8191, -33, -32, -1, 0, 1, 31, 32, 8191, 8192, 8193}) {
      const uint64_t far = jump + static_cast<uint64_t>(offset);
      if (far >= L - 1) continue;  // far and far + 1 must both be acceptable
      SCOPED_TRACE("far " + std::to_string(far));
      ReplayWindow w;
      EXPECT_EQ(w.accept(0), kOk);
      EXPECT_EQ(w.accept(1), kOk);
      EXPECT_EQ(w.accept(far), kOk);
      EXPECT_EQ(w.accept(far + 1), kOk);
      EXPECT_EQ(w.accept(far), kDup);
      EXPECT_EQ(w.accept(far + 1 - W), kOk);  // the lower edge
      EXPECT_EQ(w.accept(far - W), kOld);
      EXPECT_EQ(w.accept(1), kOld);
      EXPECT_EQ(w.greatest(), far + 1);
    }
  }
}

// Today's sequential algorithm, as it was before the window became lock-free:
// 128 blocks of 64 bits, cleared as the top slides past them. The window must
// give the same answer for every sequence of calls.
class SequentialWindow {
 public:
  ReplayResult accept(uint64_t counter) {
    if (counter >= L) return kLim;
    const uint64_t n = counter + 1;
    if (n + W < top_) return kOld;
    const uint64_t block = n / 64;
    if (n > top_) {
      const uint64_t current = top_ / 64;
      const uint64_t skip = std::min<uint64_t>(block - current, kBlocks);
      for (uint64_t i = 1; i <= skip; ++i) blocks_[(current + i) % kBlocks] = 0;
      top_ = n;
    }
    uint64_t& word = blocks_[block % kBlocks];
    const uint64_t bit = uint64_t{1} << (n % 64);
    if (word & bit) return kDup;
    word |= bit;
    return kOk;
  }
  uint64_t greatest() const { return top_ == 0 ? 0 : top_ - 1; }
  bool has_accepted() const { return top_ != 0; }

 private:
  static constexpr uint64_t kBlocks = 128;
  uint64_t top_ = 0;
  std::array<uint64_t, kBlocks> blocks_{};
};

// The next counter of a random sequence: mostly forward with some reordering,
// plus duplicates, late and too-old counters, the window edge, jumps of every
// size (ring multiples and huge ones included) and the limit.
class CounterMix {
 public:
  explicit CounterMix(uint64_t seed) : rng_(seed) {}

  uint64_t next(const SequentialWindow& ref) {
    const uint64_t g = ref.greatest();
    uint64_t c;
    switch (rng_() % 16) {
      case 0:  // a duplicate of something recent
        c = recent_[rng_() % recent_.size()];
        break;
      case 1:  // late, inside the window
        c = g - std::min<uint64_t>(g, rng_() % (W + 1));
        break;
      case 2:  // around the lower edge
        c = g - std::min<uint64_t>(g, W - 2 + rng_() % 5);
        break;
      case 3:  // anywhere at or below the top
        c = rng_() % (g + 1);
        break;
      case 4:  // a jump of up to a few rings
        c = g + rng_() % (3 * B);
        break;
      case 5:  // a ring multiple away, either way, slightly off
        c = g + (rng_() % 3) * B - std::min<uint64_t>(g, (rng_() % 2) * B) + rng_() % 130 - 65;
        break;
      case 6:  // a huge jump: 2^k, k up to 63, or anything at all
        c = rng_() % 4 == 0 ? rng_() : g + (uint64_t{1} << (13 + rng_() % 51)) - rng_() % 64;
        break;
      case 7:  // near or past the limit
        c = L - 1 - std::min<uint64_t>(L - 1, rng_() % (2 * W)) + rng_() % 3;
        break;
      default:  // roughly in order
        c = next_ + rng_() % 6;
        next_ += 3;
        break;
    }
    if (c > next_ && c < L) next_ = c;
    recent_[pos_++ % recent_.size()] = c;
    return c;
  }

 private:
  std::mt19937_64 rng_;
  uint64_t next_ = 0;
  size_t pos_ = 0;
  std::array<uint64_t, 32> recent_{};
};

TEST(ReplayWindow, SameAsSequentialAlgorithm) {
  CounterMix mix(6479);
  std::mt19937_64 rng(13);
  ReplayWindow w;
  // 20,000 sequences: many short ones, so the first steps after a fresh or reset
  // window get tested as much as long runs. Half of them start from reset().
  for (int seq = 0; seq < 20000; ++seq) {
    SequentialWindow ref;
    ReplayWindow fresh;
    const bool use_fresh = seq % 2 == 0;
    ReplayWindow& win = use_fresh ? fresh : w;
    if (!use_fresh) w.reset();
    const int steps = seq % 100 == 0 ? 5000 : 1 + static_cast<int>(rng() % 40);
    for (int i = 0; i < steps; ++i) {
      const uint64_t c = mix.next(ref);
      const ReplayResult want = ref.accept(c);
      const ReplayResult got = win.accept(c);
      ASSERT_EQ(got, want) << "sequence " << seq << " step " << i << ": counter " << c << " gave "
                           << Name(got) << ", want " << Name(want);
      ASSERT_EQ(win.greatest(), ref.greatest());
      ASSERT_EQ(win.has_accepted(), ref.has_accepted());
    }
  }
}

// Concurrency: kThreads threads feed the same counters into one window, as RX
// workers decrypting packets of one keypair would. Results are tallied per
// counter after the threads have joined. The assertions hold whatever the
// schedule; how often the threads truly race depends on free CPUs. On a 2-CPU
// machine, every run of the two tests caught a check-then-mark that is not one
// atomic step (a load and a store in place of the compare-exchange); on a very
// busy one the threads may hardly overlap. scripts/test.sh also runs them
// under TSan.
constexpr int kThreads = 4;

// What the threads got for one counter, over all its feeds.
struct Tally {
  int accepted = 0;
  int duplicate = 0;
  int too_old = 0;
  void add(ReplayResult r) {
    if (r == kOk) ++accepted;
    if (r == kDup) ++duplicate;
    if (r == kOld) ++too_old;
  }
};

// A barrier that spins, yielding, rather than sleeping: when it opens, every
// thread is running or about to, so the threads overlap within a round's
// fraction of a millisecond instead of waking up one after the other.
class SpinBarrier {
 public:
  explicit SpinBarrier(int n) : n_(n) {}
  void wait() {
    const int generation = generation_.load(std::memory_order_acquire);
    if (arrived_.fetch_add(1, std::memory_order_acq_rel) + 1 == n_) {
      arrived_.store(0, std::memory_order_relaxed);
      generation_.fetch_add(1, std::memory_order_release);
      return;
    }
    while (generation_.load(std::memory_order_acquire) == generation) std::this_thread::yield();
  }

 private:
  const int n_;
  std::atomic<int> arrived_{0};
  std::atomic<int> generation_{0};
};

// Each test runs twice: with accept() per counter (param 0), and as a worker's
// receive path does it, mark() per counter and raise() once per burst of 64
// with its greatest accepted counter.
class ReplayConcurrent : public testing::TestWithParam<size_t> {};

// Feeds seq to w, starting at position start and wrapping round, into out
// (indexed by position in seq); in bursts of `burst` (0: accept()).
void Feed(ReplayWindow& w, const std::vector<uint64_t>& seq, size_t start,
          std::vector<ReplayResult>& out, size_t burst) {
  out.resize(seq.size());
  bool marked = false;
  uint64_t greatest = 0;
  for (size_t k = 0; k < seq.size(); ++k) {
    const size_t i = (start + k) % seq.size();
    if (burst == 0) {
      out[i] = w.accept(seq[i]);
      continue;
    }
    out[i] = w.mark(seq[i]);
    if (out[i] == kOk) {
      greatest = marked ? std::max(greatest, seq[i]) : seq[i];
      marked = true;
    }
    if ((k + 1) % burst == 0 || k + 1 == seq.size()) {
      if (marked) w.raise(greatest);
      marked = false;
    }
  }
}

// Rounds of counters, each round kSpan consecutive counters shuffled, a fifth
// of them fed twice; every thread waits for the others between rounds. A round
// spans less than the window, so no counter can be too old while its round
// runs: each must be accepted exactly once and be a duplicate for every other
// feed. Between rounds the window slides half its width, or jumps by 2^30,
// 2^38 or 2^46 counters.
TEST_P(ReplayConcurrent, RoundsAcceptEachCounterOnce) {
  constexpr int kRounds = 24;
  constexpr uint64_t kSpan = 4096;
  static_assert(kSpan <= W);
  std::mt19937_64 rng(4242);
  std::vector<uint64_t> bases;
  std::vector<std::vector<uint64_t>> rounds;
  uint64_t base = 0;
  for (int r = 0; r < kRounds; ++r) {
    std::vector<uint64_t> seq(kSpan);
    std::iota(seq.begin(), seq.end(), base);
    for (uint64_t i = 0; i < kSpan / 5; ++i) seq.push_back(base + rng() % kSpan);
    std::shuffle(seq.begin(), seq.end(), rng);
    bases.push_back(base);
    rounds.push_back(std::move(seq));
    base += r % 6 == 5 ? uint64_t{1} << (30 + r / 6 * 8) : kSpan + rng() % 100;
  }

  ReplayWindow w;
  SpinBarrier sync(kThreads);
  std::vector<std::vector<std::vector<ReplayResult>>> results(
      kThreads, std::vector<std::vector<ReplayResult>>(kRounds));
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int r = 0; r < kRounds; ++r) {
        sync.wait();
        // Half the threads start half-way through: same counters, other order.
        Feed(w, rounds[r], t % 2 * rounds[r].size() / 2, results[t][r], GetParam());
      }
    });
  }
  for (auto& th : threads) th.join();

  for (int r = 0; r < kRounds; ++r) {
    std::vector<Tally> tally(kSpan);
    for (int t = 0; t < kThreads; ++t) {
      for (size_t i = 0; i < rounds[r].size(); ++i) {
        tally[rounds[r][i] - bases[r]].add(results[t][r][i]);
      }
    }
    for (uint64_t i = 0; i < kSpan; ++i) {
      ASSERT_EQ(tally[i].accepted, 1) << "round " << r << " counter " << bases[r] + i;
      ASSERT_EQ(tally[i].too_old, 0) << "round " << r << " counter " << bases[r] + i;
    }
  }
  EXPECT_EQ(w.greatest(), bases.back() + kSpan - 1);
}

// No rounds: each thread runs through the whole stream at its own pace, so a
// fast thread slides the window past counters a slow one has yet to feed. The
// stream is in order with local reordering, one feed in five repeating a
// recent counter, and jumps of 2^33 now and then. Whatever the pace: no
// counter accepted twice; a duplicate only of a counter some thread accepted;
// a counter in the final window (never too old for anyone) accepted exactly
// once.
TEST_P(ReplayConcurrent, FreeRunningSlidingWindow) {
  constexpr uint64_t kCounters = 65536;
  std::mt19937_64 rng(8128);
  std::vector<uint64_t> distinct(kCounters);
  for (uint64_t i = 0; i < kCounters; ++i) distinct[i] = i + (i / 16384) * (uint64_t{1} << 33);
  std::vector<uint64_t> shuffled = distinct;
  for (size_t i = 0; i + 1 < shuffled.size(); ++i) {
    std::swap(shuffled[i], shuffled[std::min(shuffled.size() - 1, i + rng() % 512)]);
  }
  std::vector<uint64_t> seq;
  for (size_t i = 0; i < shuffled.size(); ++i) {
    if (i % 4 == 0) seq.push_back(shuffled[i - std::min<size_t>(i, rng() % 2000)]);
    seq.push_back(shuffled[i]);
  }
  const uint64_t top = distinct.back();

  ReplayWindow w;
  SpinBarrier start(kThreads);
  std::vector<std::vector<ReplayResult>> results(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      start.wait();
      Feed(w, seq, 0, results[t], GetParam());
    });
  }
  for (auto& th : threads) th.join();

  std::vector<Tally> tally(kCounters);
  auto index = [](uint64_t c) { return c & ((uint64_t{1} << 33) - 1); };  // distinct[i] -> i
  for (int t = 0; t < kThreads; ++t) {
    for (size_t i = 0; i < seq.size(); ++i) {
      tally[index(seq[i])].add(results[t][i]);
    }
  }
  int accepted = 0;
  for (uint64_t i = 0; i < kCounters; ++i) {
    const uint64_t c = distinct[i];
    ASSERT_LE(tally[i].accepted, 1) << c;
    if (tally[i].duplicate > 0) {
      ASSERT_EQ(tally[i].accepted, 1) << c;
    }
    if (c + W >= top) {
      ASSERT_EQ(tally[i].accepted, 1) << c;
      ASSERT_EQ(tally[i].too_old, 0) << c;
      ASSERT_EQ(w.accept(c), kDup) << c;  // and the window still knows it
    }
    accepted += tally[i].accepted;
  }
  EXPECT_EQ(w.greatest(), top);
  EXPECT_GE(accepted, static_cast<int>(W));
}

INSTANTIATE_TEST_SUITE_P(AcceptOrMarkAndRaise, ReplayConcurrent, testing::Values(0, 64),
                         [](const testing::TestParamInfo<size_t>& info) {
                           return info.param == 0 ? std::string("Accept")
                                                  : "MarkRaise" + std::to_string(info.param);
                         });

}  // namespace
}  // namespace faraday::dataplane
