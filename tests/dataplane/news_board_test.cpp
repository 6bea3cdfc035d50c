// news_board_test.cpp: several lcores' UnderlayLinks on one port, each on a
// thread of its own, sharing what they hear through a NewsBoard
// (underlay_link.h): every lcore asked for a neighbour, and every answer lands
// on another lcore's queue; each still resolves its neighbour. Part of the
// ThreadSanitizer pass (dataplane_threads_test).
#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#include "dataplane/underlay_link.h"

namespace faraday::dataplane {
namespace {

UnderlayAddress host(uint8_t n) {
  UnderlayAddress a;
  a.mac = {0x02, 0, 0, 0, 0, n};
  a.port = 51820;
  a.v4 = UnderlayAddress::V4{{10, 0, 0, n}, 24, std::nullopt};
  return a;
}

Endpoint endpoint_of(const UnderlayAddress& a) {
  Endpoint e;
  e.family = AF_INET;
  std::memcpy(e.addr.data(), a.v4->addr.data(), 4);
  e.port = a.port;
  return e;
}

TEST(NewsBoardConcurrent, EachLcoreResolvesItsNeighbourFromAnotherLcoresAnswer) {
  constexpr unsigned kLcores = 4;
  const UnderlayAddress self = host(1);
  std::vector<std::unique_ptr<UnderlayLink>> links;
  std::array<std::vector<uint8_t>, kLcores> answers;
  std::array<uint8_t, UnderlayLink::kControlFrameSize> request, answer;
  std::vector<uint8_t> payload(kUnderlayHeadroom + 32);
  NewsBoard board(kLcores);
  for (unsigned k = 0; k < kLcores; ++k) {
    links.push_back(std::make_unique<UnderlayLink>(self));
    links[k]->share_news();
    // Lcore k asks for neighbour 10 + k; that neighbour answers.
    const UnderlayAddress neighbour = host(static_cast<uint8_t>(10 + k));
    const UnderlayLink::Tx asked =
        links[k]->send(payload.data() + kUnderlayHeadroom, 32, endpoint_of(neighbour), 1, request);
    ASSERT_EQ(asked.frame, nullptr);
    ASSERT_GT(asked.request_length, 0u);
    UnderlayLink other(neighbour);
    Frame f;
    size_t n = 0;
    ASSERT_EQ(other.receive({request.data(), asked.request_length}, 1, f, answer, n),
              UnderlayLink::Rx::kAnswer);
    answers[k].assign(answer.begin(), answer.begin() + static_cast<long>(n));
  }

  std::array<std::atomic<bool>, kLcores> resolved{};
  std::atomic<unsigned> done{0};
  auto lcore = [&](unsigned k) {
    UnderlayLink& link = *links[k];
    std::array<uint8_t, UnderlayLink::kControlFrameSize> req, ans;
    std::vector<uint8_t> buf(kUnderlayHeadroom + 32);
    // The answer to lcore k + 1's question lands on lcore k's queue.
    const std::vector<uint8_t>& landed = answers[(k + 1) % kLcores];
    Frame f;
    size_t n = 0;
    (void)link.receive({landed.data(), landed.size()}, 2, f, ans, n);
    const Endpoint mine = endpoint_of(host(static_cast<uint8_t>(10 + k)));
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    // Every lcore keeps publishing and hearing until all have resolved.
    while (done.load() < kLcores && std::chrono::steady_clock::now() < deadline) {
      board.publish(k, link);
      board.deliver(k, link, 3);
      if (!resolved[k].load() &&
          link.send(buf.data() + kUnderlayHeadroom, 32, mine, 3, req).frame != nullptr) {
        resolved[k].store(true);
        done.fetch_add(1);
      }
      std::this_thread::yield();
    }
  };
  std::vector<std::thread> threads;
  for (unsigned k = 0; k < kLcores; ++k) threads.emplace_back(lcore, k);
  for (auto& t : threads) t.join();
  for (unsigned k = 0; k < kLcores; ++k) {
    EXPECT_TRUE(resolved[k].load()) << "lcore " << k;
    EXPECT_EQ(links[k]->counters().not_learnt, 1u) << "lcore " << k;  // the answer it got
    EXPECT_GE(links[k]->counters().heard, 1u) << "lcore " << k;
  }
  EXPECT_EQ(board.lost(), 0u);
}

}  // namespace
}  // namespace faraday::dataplane
