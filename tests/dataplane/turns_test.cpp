// turns_test.cpp: Turns (turns.h), one queue's bursts worked on by several
// threads at once and sent in the order they were read. Part of the
// ThreadSanitizer pass (dataplane_threads_test): the queue and what is sent
// are plain memory that only the turns order.
#include <gtest/gtest.h>

#include <atomic>
#include <barrier>
#include <cstdint>
#include <numeric>
#include <random>
#include <thread>
#include <vector>

#include "dataplane/turns.h"

namespace faraday::dataplane {
namespace {

TEST(Turns, OneThreadReadsAtATimeAndEachBurstThatFoundPacketsGetsTheNextTicket) {
  Turns turns;
  ASSERT_TRUE(turns.try_read());
  EXPECT_FALSE(turns.try_read());  // held: another thread would skip the queue
  turns.read_none();               // an empty queue: no ticket
  ASSERT_TRUE(turns.try_read());
  EXPECT_EQ(turns.read_done(), 0u);
  ASSERT_TRUE(turns.try_read());
  EXPECT_EQ(turns.read_done(), 1u);
  turns.await(0);  // nothing before ticket 0
  turns.sent(0);
  turns.await(1);
  turns.sent(1);
  ASSERT_TRUE(turns.try_read());
  EXPECT_EQ(turns.read_done(), 2u);
}

// Two threads drain one queue of numbered packets in bursts of 1 to 16,
// each working on its bursts for a while of its own (some yield, as a
// preempted lcore would) before sending: what is sent is every packet once,
// in the queue's order. Each thread, its first burst sent, waits until the
// other has one too, so both take part however the machine schedules them.
TEST(TurnsConcurrent, ThreadsThatWorkOnBurstsAtOnceSendThemInTheOrderTheyWereRead) {
  constexpr uint32_t kPackets = 200000;
  constexpr int kThreads = 2;
  std::vector<uint32_t> queue(kPackets);
  std::iota(queue.begin(), queue.end(), 0u);
  size_t read_at = 0;          // the reader's alone
  std::vector<uint32_t> sent;  // the sender's alone
  sent.reserve(kPackets);
  Turns turns;
  std::barrier start(kThreads);
  std::vector<uint64_t> bursts(kThreads);
  std::atomic<int> started{0};  // threads that sent a burst

  auto run = [&](int t) {
    std::minstd_rand random(static_cast<unsigned>(t) + 1);
    std::vector<uint32_t> burst;
    start.arrive_and_wait();
    for (;;) {
      if (!turns.try_read()) {
        std::this_thread::yield();  // more threads than CPUs here: let the reader on
        continue;
      }
      const size_t n = std::min<size_t>(1 + random() % 16, kPackets - read_at);
      if (n == 0) {
        turns.read_none();
        return;
      }
      burst.assign(queue.begin() + static_cast<ptrdiff_t>(read_at),
                   queue.begin() + static_cast<ptrdiff_t>(read_at + n));
      read_at += n;
      const uint64_t ticket = turns.read_done();
      ++bursts[t];
      // The work: long or short, sometimes off the CPU.
      uint32_t sum = 0;
      for (uint32_t spin = random() % 200; spin > 0; --spin) sum += spin * burst[0];
      if (random() % 64 == 0) std::this_thread::yield();
      turns.await(ticket);
      sent.insert(sent.end(), burst.begin(), burst.end());
      turns.sent(ticket);
      if (bursts[t] == 1) {
        started.fetch_add(1);
        while (started.load() < kThreads) std::this_thread::yield();
      }
      if (sum == 1) burst.clear();  // keeps the work from being optimised away
    }
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) threads.emplace_back(run, t);
  for (std::thread& thread : threads) thread.join();

  ASSERT_EQ(sent.size(), kPackets);
  EXPECT_TRUE(sent == queue) << "a packet was sent out of order, twice or not at all";
  for (int t = 0; t < kThreads; ++t) EXPECT_GT(bursts[t], 0u) << "thread " << t;
}

}  // namespace
}  // namespace faraday::dataplane
