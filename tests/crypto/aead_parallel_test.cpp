// ParallelAead: a burst spread over several lanes comes out byte for byte as one
// backend would make it, in order, with an ok flag per job; it hands chunks to its
// helper threads and takes them back many times in a row; it stops cleanly while idle.
// Part of the ASan and TSan passes (scripts/test.sh).
#include "crypto/aead_parallel.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
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
  std::vector<Bytes> buffers(64, Bytes(1420 + kTagSize));
  std::vector<AeadJob> jobs;
  Key key{};
  for (Bytes& b : buffers) jobs.push_back(AeadJob{&key, 0, b.data(), 1420, false});
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
    std::vector<Bytes> buffers(64, Bytes(1420 + kTagSize));
    std::vector<AeadJob> jobs;
    Key key{};
    for (Bytes& b : buffers) jobs.push_back(AeadJob{&key, 0, b.data(), 1420, false});
    (*parallel)->open_burst(jobs);
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

}  // namespace
}  // namespace faraday::crypto
