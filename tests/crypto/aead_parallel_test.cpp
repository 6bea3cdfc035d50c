// ParallelAead: a burst spread over several lanes comes out byte for byte as one
// backend would make it, in order, with an ok flag per job; it hands chunks to its
// helper threads and takes them back many times in a row; it stops cleanly while idle.
// AeadHelpers shared by several callers: a burst is shared only while a core is
// spare, and callers on several threads at once still get every byte right.
// Part of the ASan and TSan passes (scripts/test.sh).
#include "crypto/aead_parallel.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "crypto/aead.h"
#include "crypto/aead_batch.h"

namespace faraday::crypto {
namespace {

using Bytes = std::vector<uint8_t>;

// Every backend this build can run, by the factory select_aead_backend hands out.
std::vector<AeadFactory> factories() {
  std::vector<AeadFactory> out;
  for (const char* name : {"sodium", "ipsec-mb"}) {
    auto chosen = select_aead_backend(name);
    if (chosen) out.push_back(chosen->make);
  }
  return out;
}

// One random burst: 1..64 messages of mixed sizes (mostly large, so bursts do cross
// kParallelMinBytes), each under one of a few keys, with room for the tag.
struct Burst {
  std::vector<Bytes> buffers;
  std::vector<AeadJob> jobs;

  Burst(std::mt19937& rng, const std::vector<Key>& keys, size_t count) {
    std::uniform_int_distribution<int> kind(0, 3), byte(0, 255);
    std::uniform_int_distribution<uint32_t> small(0, 200), large(1000, 1420);
    for (size_t i = 0; i < count; ++i) {
      const uint32_t len = kind(rng) == 0 ? small(rng) : large(rng);
      Bytes b(len + kTagSize);
      for (uint32_t j = 0; j < len; ++j) b[j] = static_cast<uint8_t>(byte(rng));
      buffers.push_back(std::move(b));
    }
    for (size_t i = 0; i < count; ++i)
      jobs.push_back(AeadJob{&keys[rng() % keys.size()], rng(), buffers[i].data(),
                             static_cast<uint32_t>(buffers[i].size() - kTagSize), false});
  }
  // The same messages in other buffers (jobs point at the copy's buffers).
  Burst(const Burst& other) : buffers(other.buffers), jobs(other.jobs) {
    for (size_t i = 0; i < jobs.size(); ++i) jobs[i].data = buffers[i].data();
  }
};

std::vector<Key> some_keys(std::mt19937& rng) {
  std::vector<Key> keys(5);
  for (Key& k : keys)
    for (uint8_t& b : k) b = static_cast<uint8_t>(rng());
  return keys;
}

TEST(ParallelAead, SealMatchesOneBackendByteForByte) {
  std::mt19937 rng(7);
  const std::vector<Key> keys = some_keys(rng);
  for (const AeadFactory& make : factories()) {
    std::unique_ptr<AeadBackend> single = make();
    for (unsigned lanes : {1u, 2u, 3u, 4u}) {
      auto parallel = make_parallel_aead(make, lanes);
      ASSERT_TRUE(parallel) << parallel.error();
      for (int round = 0; round < 40; ++round) {
        Burst mine(rng, keys, 1 + rng() % 64);
        Burst reference(mine);
        (*parallel)->seal_burst(mine.jobs);
        single->seal_burst(reference.jobs);
        for (size_t i = 0; i < mine.jobs.size(); ++i) {
          ASSERT_TRUE(mine.jobs[i].ok);
          ASSERT_TRUE(mine.buffers[i] == reference.buffers[i])
              << single->describe() << " x" << lanes << " job " << i << " of " << mine.jobs.size();
        }
      }
    }
  }
}

TEST(ParallelAead, OpenReportsEachForgeryAndLeavesItsDataAlone) {
  std::mt19937 rng(11);
  const std::vector<Key> keys = some_keys(rng);
  for (const AeadFactory& make : factories()) {
    auto parallel = make_parallel_aead(make, 3);
    ASSERT_TRUE(parallel) << parallel.error();
    for (int round = 0; round < 40; ++round) {
      Burst burst(rng, keys, 1 + rng() % 64);
      const Burst plain(burst);
      (*parallel)->seal_burst(burst.jobs);
      std::vector<bool> forged(burst.jobs.size());
      for (size_t i = 0; i < burst.jobs.size(); ++i) {
        burst.jobs[i].length += kTagSize;
        forged[i] = rng() % 5 == 0;
        if (forged[i]) burst.buffers[i].back() ^= 0x80;
      }
      const Burst sealed(burst);
      (*parallel)->open_burst(burst.jobs);
      for (size_t i = 0; i < burst.jobs.size(); ++i) {
        ASSERT_EQ(burst.jobs[i].ok, !forged[i]) << "job " << i;
        const size_t text = plain.jobs[i].length;
        if (forged[i]) {
          EXPECT_TRUE(burst.buffers[i] == sealed.buffers[i]) << "forged job " << i << " touched";
        } else {
          EXPECT_TRUE(std::equal(plain.buffers[i].begin(), plain.buffers[i].begin() + text,
                                 burst.buffers[i].begin()))
              << "job " << i;
        }
      }
    }
  }
}

// A fake backend that stamps each message's first byte with its lane, so the test
// sees which lane ran which job. Each call takes a few microseconds, as real
// crypto would, so a helper has time to join in.
class StampBackend final : public AeadBackend {
 public:
  explicit StampBackend(uint8_t lane) : lane_(lane) {}
  const char* name() const override { return "stamp"; }
  void seal_burst(std::span<AeadJob> jobs) override { stamp(jobs); }
  void open_burst(std::span<AeadJob> jobs) override { stamp(jobs); }

 private:
  void stamp(std::span<AeadJob> jobs) const {
    const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(5);
    while (std::chrono::steady_clock::now() < until) {
    }
    for (AeadJob& job : jobs) {
      job.data[0] = lane_;
      job.ok = true;
    }
  }
  uint8_t lane_;
};

// 64 full-size (1420-byte) messages under one key: a burst large enough to share.
struct FullBurst {
  Key key{};
  std::vector<Bytes> buffers = std::vector<Bytes>(64, Bytes(1420 + kTagSize));
  std::vector<AeadJob> jobs;
  FullBurst() {
    for (Bytes& b : buffers) jobs.push_back(AeadJob{&key, 0, b.data(), 1420, false});
  }
  FullBurst(const FullBurst&) = delete;  // jobs point into this object
};

AeadFactory stamp_factory() {
  auto next = std::make_shared<uint8_t>(0);
  return [next] { return std::make_unique<StampBackend>((*next)++); };
}

TEST(ParallelAead, PiecesAreContiguousSharedAndSmallBurstsStayInline) {
  auto parallel = make_parallel_aead(stamp_factory(), 2);
  ASSERT_TRUE(parallel);
  EXPECT_EQ((*parallel)->describe(), "stamp x2 lanes");
  EXPECT_STREQ((*parallel)->name(), "stamp");

  // 64 full-size messages: kPiecesPerLane pieces per lane of 16 jobs each, every
  // piece run by one lane. The helper spins while the caller hands out bursts, so
  // over many bursts it takes some pieces.
  FullBurst full;
  std::vector<Bytes>& buffers = full.buffers;
  std::vector<AeadJob>& jobs = full.jobs;
  const size_t piece = jobs.size() / (2 * kPiecesPerLane);
  int helper_pieces = 0;
  for (int round = 0; round < 1000; ++round) {
    for (Bytes& b : buffers) b[0] = 0xff;
    (*parallel)->seal_burst(jobs);
    for (size_t i = 0; i < jobs.size(); ++i) {
      ASSERT_TRUE(jobs[i].ok);
      ASSERT_LE(buffers[i][0], 1) << "job " << i << " not run";
      ASSERT_EQ(buffers[i][0], buffers[i - i % piece][0]) << "piece of job " << i << " split";
    }
    for (size_t i = 0; i < jobs.size(); i += piece) helper_pieces += buffers[i][0];
  }
  EXPECT_GT(helper_pieces, 0);

  // Two full-size messages are below kParallelMinBytes: the caller's lane runs both.
  buffers[0][0] = buffers[1][0] = 0xff;
  (*parallel)->seal_burst(std::span(jobs).first(2));
  EXPECT_EQ(buffers[0][0], 0);
  EXPECT_EQ(buffers[1][0], 0);
}

TEST(ParallelAead, ManyBurstsInARowFromOneThread) {
  std::mt19937 rng(3);
  const std::vector<Key> keys = some_keys(rng);
  for (const AeadFactory& make : factories()) {
    auto parallel = make_parallel_aead(make, 2);
    ASSERT_TRUE(parallel);
    Burst burst(rng, keys, 64);
    const Burst plain(burst);
    for (int round = 0; round < 2000; ++round) {
      (*parallel)->seal_burst(burst.jobs);
      for (AeadJob& job : burst.jobs) job.length += kTagSize;
      (*parallel)->open_burst(burst.jobs);
      for (AeadJob& job : burst.jobs) {
        ASSERT_TRUE(job.ok) << "round " << round;
        job.length -= kTagSize;
      }
    }
    // The plaintext is back (the tag room behind it holds the last tag).
    for (size_t i = 0; i < burst.jobs.size(); ++i)
      EXPECT_TRUE(std::equal(plain.buffers[i].begin(), plain.buffers[i].end() - kTagSize,
                             burst.buffers[i].begin()))
          << "job " << i;
  }
}

TEST(ParallelAead, StopsWhileIdle) {
  for (unsigned lanes : {1u, 2u, 4u}) {
    // Never used.
    ASSERT_TRUE(make_parallel_aead(stamp_factory(), lanes));
    // Used once, then idle long enough for the helpers to sleep on their futex.
    auto parallel = make_parallel_aead(stamp_factory(), lanes);
    ASSERT_TRUE(parallel);
    FullBurst full;
    (*parallel)->open_burst(full.jobs);
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    parallel->reset();
  }
}

// A helper must not take a process-directed signal meant for the daemon's signalfd
// (SIGTERM would kill the process, SIGUSR1 too): every helper blocks them all.
TEST(ParallelAead, HelpersBlockSignals) {
  auto parallel = make_parallel_aead(stamp_factory(), 3);
  ASSERT_TRUE(parallel);
  int helpers = 0;
  for (const auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
    std::ifstream comm(task.path() / "comm");
    std::string name;
    std::getline(comm, name);
    if (name.rfind("aead-lane", 0) != 0) continue;
    ++helpers;
    std::ifstream status(task.path() / "status");
    uint64_t blocked = 0;
    for (std::string line; std::getline(status, line);)
      if (line.rfind("SigBlk:", 0) == 0) blocked = std::stoull(line.substr(7), nullptr, 16);
    for (int sig : {SIGHUP, SIGINT, SIGTERM, SIGUSR1, SIGUSR2, SIGPIPE})
      EXPECT_TRUE(blocked & (uint64_t{1} << (sig - 1))) << name << " takes signal " << sig;
  }
  EXPECT_EQ(helpers, 2);
}

TEST(ParallelAead, RefusesBadLaneCountsAndFailedInstances) {
  EXPECT_FALSE(make_parallel_aead(stamp_factory(), 0));
  EXPECT_FALSE(make_parallel_aead(stamp_factory(), kMaxLanes + 1));
  int made = 0;
  auto fails_second = [&made]() -> std::unique_ptr<AeadBackend> {
    if (made++ == 1) return nullptr;
    return std::make_unique<StampBackend>(0);
  };
  auto refused = make_parallel_aead(fails_second, 3);
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().find("2 of 3"), std::string::npos) << refused.error();
  auto one = make_parallel_aead(stamp_factory(), 1);
  ASSERT_TRUE(one);
  EXPECT_EQ((*one)->describe(), "stamp x1 lane");
}

// --- AeadHelpers shared by several callers (a pipeline's queue workers) ---

// Stamps of helper threads in `buffers`, one per piece of `piece` jobs.
int helper_stamps(const std::vector<Bytes>& buffers, size_t piece, uint8_t own) {
  int n = 0;
  for (size_t i = 0; i < buffers.size(); i += piece) n += buffers[i][0] != own;
  return n;
}

// A random burst through `mine` matches `single` byte for byte, and opens again.
void seal_and_open(ParallelAead& mine, AeadBackend& single, std::mt19937& rng,
                   const std::vector<Key>& keys, unsigned seed) {
  Burst burst(rng, keys, 1 + rng() % 64);
  Burst reference(burst);
  mine.seal_burst(burst.jobs);
  single.seal_burst(reference.jobs);
  for (size_t i = 0; i < burst.jobs.size(); ++i) {
    ASSERT_TRUE(burst.jobs[i].ok);
    ASSERT_TRUE(burst.buffers[i] == reference.buffers[i]) << "seed " << seed << " job " << i;
  }
  for (AeadJob& job : burst.jobs) job.length += kTagSize;
  mine.open_burst(burst.jobs);
  for (const AeadJob& job : burst.jobs) ASSERT_TRUE(job.ok);
}

// Two queue workers over one helper: while both are at work there is no spare
// core and each runs its own bursts; once one sleeps, the other's bursts are shared.
TEST(AeadHelpers, ABurstIsSharedOnlyWhileACoreIsSpare) {
  auto helpers = std::make_shared<AeadHelpers>(
      [] {
        std::vector<std::unique_ptr<AeadBackend>> one;
        one.push_back(std::make_unique<StampBackend>(9));
        return one;
      }(),
      SharingOptions{false, false});  // this test decides which cores are spare
  ParallelAead a(std::make_unique<StampBackend>(1), helpers);
  ParallelAead b(std::make_unique<StampBackend>(2), helpers);
  EXPECT_EQ(a.lanes(), 2u);
  EXPECT_EQ(helpers->busy(), 2u);

  FullBurst full;
  std::vector<Bytes>& buffers = full.buffers;
  std::vector<AeadJob>& jobs = full.jobs;
  const size_t piece = jobs.size() / (2 * kPiecesPerLane);
  // Pieces the helper ran in 500 bursts; or, with until_shared, in as many as it
  // takes (up to 10 s) for the helper, which needs a CPU, to take one.
  auto rounds = [&](ParallelAead& caller, uint8_t own, bool until_shared = false) {
    int shared = 0;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    for (int round = 0; round < 500 || (until_shared && shared == 0 &&
                                        std::chrono::steady_clock::now() < deadline);
         ++round) {
      caller.seal_burst(jobs);
      for (const AeadJob& job : jobs) EXPECT_TRUE(job.ok);
      shared += helper_stamps(buffers, piece, own);
    }
    return shared;
  };
  EXPECT_EQ(rounds(a, 1), 0) << "shared while both callers were busy";
  EXPECT_EQ(a.shared_bursts(), 0u);

  b.set_idle(true);
  b.set_idle(true);  // twice counts once
  EXPECT_EQ(helpers->busy(), 1u);
  EXPECT_GT(rounds(a, 1, true), 0) << "not shared while b slept";
  EXPECT_GE(a.shared_bursts(), 500u);
  b.set_idle(false);
  EXPECT_EQ(rounds(a, 1), 0);

  // A caller that is gone is no longer busy.
  { ParallelAead c(std::make_unique<StampBackend>(3), helpers); }
  a.set_idle(true);
  EXPECT_EQ(helpers->busy(), 1u);
  EXPECT_GT(rounds(b, 2, true), 0);
}

// Callers on their own threads run bursts at once over shared helpers while
// another caller comes and goes: every byte as one backend makes it (part of the
// TSan and ASan passes).
TEST(AeadHelpers, CallersOnSeveralThreadsAtOnceMatchOneBackend) {
  for (const AeadFactory& make : factories()) {
    auto helpers = std::make_shared<AeadHelpers>(
        [&make] {
          std::vector<std::unique_ptr<AeadBackend>> two;
          two.push_back(make());
          two.push_back(make());
          return two;
        }(),
        SharingOptions{false, false});  // share whatever the machine's load
    std::atomic<bool> stop{false};
    std::thread churn([&] {  // attaches and detaches while the others share
      while (!stop.load()) {
        ParallelAead c(make(), helpers);
        c.set_idle(true);
      }
    });
    auto caller = [&](unsigned seed) {
      std::mt19937 rng(seed);
      const std::vector<Key> keys = some_keys(rng);
      std::unique_ptr<AeadBackend> single = make();
      ParallelAead mine(make(), helpers);
      for (int round = 0; round < 150; ++round) {
        ASSERT_NO_FATAL_FAILURE(seal_and_open(mine, *single, rng, keys, seed));
      }
      EXPECT_GT(mine.shared_bursts(), 0u);  // the helpers' path was taken
    };
    std::thread second(caller, 21u);
    caller(20u);
    second.join();
    stop.store(true);
    churn.join();
  }
}

// A helper that takes a piece and then is slow (its core busy elsewhere, or
// preempted) holds the caller up: the caller stops sharing for a while, longer
// each time, and counts it.
TEST(AeadHelpers, AHelperThatHoldsTheCallerUpIsLeftOutForAWhile) {
  class Slow final : public AeadBackend {
   public:
    const char* name() const override { return "slow"; }
    void seal_burst(std::span<AeadJob> jobs) override { run(jobs); }
    void open_burst(std::span<AeadJob> jobs) override { run(jobs); }

   private:
    static void run(std::span<AeadJob> jobs) {
      std::this_thread::sleep_for(std::chrono::microseconds(500));
      for (AeadJob& job : jobs) {
        job.data[0] = 9;
        job.ok = true;
      }
    }
  };
  std::vector<std::unique_ptr<AeadBackend>> slow;
  slow.push_back(std::make_unique<Slow>());
  ParallelAead parallel(
      std::make_unique<StampBackend>(1),
      std::make_shared<AeadHelpers>(std::move(slow), SharingOptions{false, true}));
  FullBurst full;
  std::vector<Bytes>& buffers = full.buffers;
  std::vector<AeadJob>& jobs = full.jobs;
  const size_t piece = jobs.size() / (2 * kPiecesPerLane);
  int shared_bursts = 0;
  constexpr int kBursts = 200;
  for (int burst = 0; burst < kBursts; ++burst) {
    parallel.seal_burst(jobs);
    for (const AeadJob& job : jobs) ASSERT_TRUE(job.ok);
    shared_bursts += helper_stamps(buffers, piece, 1) > 0;
  }
  // Pauses of 1, 2, 4 ... 128 bursts, each after a shared burst and a probe: about
  // 16 of 200 bursts shared (every one, without the pauses). On a loaded machine
  // the helper may never wake in time to take a piece: that too is a burst that
  // did not pay.
  EXPECT_GE(parallel.backoffs(), 4u);
  EXPECT_LT(shared_bursts, kBursts / 5);
}

}  // namespace
}  // namespace faraday::crypto
