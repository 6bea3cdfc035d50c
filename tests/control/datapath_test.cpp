// datapath_test.cpp: the interface (control/interface.h: dataplane::Pipeline
// with the UAPI served on it) run on its own thread and
// programmed from another, as `faradayd cluster` does: closures posted through
// the single-producer ring run in order, a full ring is reported and retried,
// apply() changes the peer table only on the data path's thread (checked
// through the UAPI socket, which that thread serves), stop() ends run(), and
// the interface goes away with the pipeline.
//
//   +---------------- fresh network namespace (one per test) -----------------+
//   |  dptPID_N: the pipeline's TUN    test thread --post()--> run() thread  |
//   +-------------------------------------------------------------------------+
//
// The UAPI socket lives in /var/run/wireguard (the file system is shared), so
// every test's interface has its own name. This is the concurrent part of the
// control tests that scripts/test.sh also runs under ThreadSanitizer. Skipped
// when not root.
#include "control/interface.h"
#include "control/uapi.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <net/if.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <future>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace faraday::control {
namespace {

using namespace std::chrono_literals;

crypto::Key peer_key(uint32_t n) {
  crypto::Key k{};
  k[0] = 0x42;
  std::memcpy(k.data() + 1, &n, sizeof(n));
  return k;
}

// `wg show`'s question over the UAPI socket: the reply's lines.
std::vector<std::string> uapi_get(const std::string& path) {
  std::vector<std::string> lines;
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return lines;
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  std::strncpy(sa.sun_path, path.c_str(), sizeof(sa.sun_path) - 1);
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  if (connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) == 0 &&
      write(fd, "get=1\n\n", 7) == 7) {
    std::string reply;
    char buf[4096];
    ssize_t n;
    while (reply.find("\n\n") == std::string::npos && (n = read(fd, buf, sizeof(buf))) > 0)
      reply.append(buf, static_cast<size_t>(n));
    size_t start = 0;
    for (size_t nl; (nl = reply.find('\n', start)) != std::string::npos; start = nl + 1)
      if (nl > start) lines.push_back(reply.substr(start, nl - start));
  }
  close(fd);
  return lines;
}

size_t count_prefix(const std::vector<std::string>& lines, const std::string& prefix) {
  size_t n = 0;
  for (const auto& l : lines) n += l.rfind(prefix, 0) == 0;
  return n;
}

class DataPathTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root (network namespaces, TUN devices)";
    original_ns_ = ::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    ASSERT_GE(original_ns_, 0) << std::strerror(errno);
    ASSERT_EQ(unshare(CLONE_NEWNET), 0) << std::strerror(errno);
    static int serial = 0;
    ifname_ = "dpt" + std::to_string(getpid()) + "_" + std::to_string(serial++);
    dataplane::PipelineOptions options;
    options.ifname = ifname_;
    auto dp = open_interface(options);
    ASSERT_TRUE(dp.ok()) << dp.error();
    dp_ = std::move(*dp);
    ASSERT_NE(if_nametoindex(ifname_.c_str()), 0u);
  }

  void TearDown() override {
    if (runner_.joinable()) stop_and_join();
    dp_.reset();
    if (original_ns_ >= 0) {
      EXPECT_EQ(setns(original_ns_, CLONE_NEWNET), 0) << std::strerror(errno);
      close(original_ns_);
    }
  }

  void start() {
    exited_ = std::promise<dataplane::DataPath::Exit>();
    runner_ = std::thread([this] { exited_.set_value(dp_->run()); });
  }
  // stop() from this thread; run() must return within a deadline.
  std::optional<dataplane::DataPath::Exit> stop_and_join() {
    auto exit = exited_.get_future();
    dp_->stop();
    if (exit.wait_for(5s) != std::future_status::ready) {
      ADD_FAILURE() << "run() did not return after stop()";
      runner_.detach();
      (void)dp_.release();  // still in use by the runaway thread
      return std::nullopt;
    }
    runner_.join();
    return exit.get();
  }
  std::string uapi_path() const {
    return std::string(uapi::kSocketDirectory) + "/" + ifname_ + ".sock";
  }

  int original_ns_ = -1;
  std::string ifname_;
  std::unique_ptr<dataplane::Pipeline> dp_;
  std::thread runner_;
  std::promise<dataplane::DataPath::Exit> exited_;
};

// workers = 0 (the default): one worker per CPU this process may use; a number
// is taken as given, and the start-up summary says how they share the work (a
// TUN queue and a UDP socket each, the kernel permitting multi-queue TUN).
TEST_F(DataPathTest, WorkersDefaultToTheCpusThisProcessMayUse) {
  cpu_set_t set;
  CPU_ZERO(&set);
  ASSERT_EQ(sched_getaffinity(0, sizeof(set), &set), 0);
  const unsigned cpus = static_cast<unsigned>(CPU_COUNT(&set));
  EXPECT_EQ(dp_->workers(), std::min(cpus, crypto::kMaxLanes));
  dp_.reset();

  dataplane::PipelineOptions options;
  options.ifname = ifname_;
  options.workers = 3;
  auto three = open_interface(options);
  ASSERT_TRUE(three.ok()) << three.error();
  EXPECT_EQ((*three)->workers(), 3u);
  EXPECT_NE((*three)->summary().find("3 workers (a TUN queue and a UDP socket each"),
            std::string::npos)
      << (*three)->summary();
}

TEST_F(DataPathTest, PostedClosuresRunInOrderOnTheDataPathThread) {
  constexpr uint32_t kPosts = 20000;
  constexpr uint32_t kPeerEvery = 100;  // every 100th closure adds a peer; half are removed later

  // Data path side: touched only inside closures, handed back through `report`.
  struct Side {
    std::vector<uint32_t> seen;
    std::thread::id thread;
    size_t apply_errors = 0;
    bool other_thread = false;
  };
  Side side;
  struct Report {
    std::vector<uint32_t> seen;
    size_t peers = 0;
    size_t apply_errors = 0;
    bool other_thread = false;
  };
  std::promise<Report> report;
  auto reported = report.get_future();

  auto closure = [&side](uint32_t i) -> dataplane::DataPath::Command {
    return [&side, i](dataplane::DataPath& d) {
      if (side.thread == std::thread::id{}) side.thread = std::this_thread::get_id();
      side.other_thread |= side.thread != std::this_thread::get_id();
      side.seen.push_back(i);
      if (i % kPeerEvery == 0) {
        uapi::SetRequest req;
        uapi::PeerSet add;
        add.public_key = peer_key(i / kPeerEvery);
        add.allowed_ips.push_back(
            *dataplane::Prefix::parse("10." + std::to_string(i / kPeerEvery / 256) + "." +
                                      std::to_string(i / kPeerEvery % 256) + ".0/24"));
        add.endpoint = dataplane::Endpoint::parse("192.0.2.1:51820");
        req.peers.push_back(add);
        side.apply_errors += !d.apply(req, false).ok();
      } else if (i % kPeerEvery == kPeerEvery / 2 && (i / kPeerEvery) % 2 == 1) {
        uapi::SetRequest req;
        uapi::PeerSet remove;
        remove.public_key = peer_key(i / kPeerEvery);
        remove.remove = true;
        req.peers.push_back(remove);
        side.apply_errors += !d.apply(req, false).ok();
      }
    };
  };

  // Hold the data path in a closure until the ring has filled up, so a full
  // ring (post() false) certainly happens; it is not lost, only refused.
  std::promise<void> gate;
  std::shared_future<void> opened = gate.get_future().share();
  std::atomic<bool> holding{false};
  ASSERT_TRUE(dp_->post([opened, &holding](dataplane::DataPath&) {
    holding.store(true);
    opened.wait();
  }));
  start();

  uint32_t next = 0;
  size_t refused = 0;
  while (dp_->post(closure(next))) ++next;
  ++refused;
  EXPECT_GE(next, 1000u);  // a ring of 1024, less the holding closure (if not yet taken)
  EXPECT_LE(next, 1024u);
  gate.set_value();

  auto deadline = std::chrono::steady_clock::now() + 20s;
  for (; next < kPosts; ++next) {
    dataplane::DataPath::Command c = closure(next);
    while (!dp_->post(c)) {
      ++refused;
      ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "ring stayed full";
      std::this_thread::yield();
    }
  }
  dataplane::DataPath::Command finish = [&side, &report](dataplane::DataPath& d) {
    report.set_value(Report{std::move(side.seen), d.device().peers().size(), side.apply_errors,
                            side.other_thread});
  };
  while (!dp_->post(finish)) std::this_thread::yield();

  ASSERT_EQ(reported.wait_for(20s), std::future_status::ready);
  Report r = reported.get();
  EXPECT_TRUE(holding.load());
  EXPECT_GE(refused, 1u);
  ASSERT_EQ(r.seen.size(), kPosts);
  for (uint32_t i = 0; i < kPosts; ++i) ASSERT_EQ(r.seen[i], i) << "out of order at " << i;
  EXPECT_EQ(r.apply_errors, 0u);
  EXPECT_FALSE(r.other_thread);
  EXPECT_EQ(r.peers, kPosts / kPeerEvery / 2);

  // wg(8)'s view, served by the data path's thread, agrees.
  auto lines = uapi_get(uapi_path());
  EXPECT_EQ(count_prefix(lines, "errno=0"), 1u);
  EXPECT_EQ(count_prefix(lines, "public_key="), kPosts / kPeerEvery / 2);
  EXPECT_EQ(count_prefix(lines, "public_key=" + crypto::to_hex(peer_key(0))), 1u);
  EXPECT_EQ(count_prefix(lines, "public_key=" + crypto::to_hex(peer_key(1))), 0u);

  EXPECT_EQ(stop_and_join(), dataplane::DataPath::Exit::kStopped);
}

TEST_F(DataPathTest, StopFromAnotherThreadEndsRun) {
  start();
  // Let run() reach its poll: a posted closure has run.
  std::promise<void> ran;
  ASSERT_TRUE(dp_->post([&ran](dataplane::DataPath&) { ran.set_value(); }));
  ASSERT_EQ(ran.get_future().wait_for(5s), std::future_status::ready);
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(stop_and_join(), dataplane::DataPath::Exit::kStopped);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 900ms);  // woken, not the 1 s poll timeout
}

TEST_F(DataPathTest, StopBeforeRunReturnsAtOnce) {
  dp_->stop();
  EXPECT_EQ(dp_->run(), dataplane::DataPath::Exit::kStopped);
}

TEST_F(DataPathTest, InterfaceAndSocketGoWithTheDataPath) {
  std::string path = uapi_path();
  EXPECT_TRUE(std::filesystem::exists(path));
  std::string name = dp_->ifname();
  EXPECT_EQ(name, ifname_);
  // Closures still queued when the pipeline goes are freed, not run.
  bool ran = false;
  ASSERT_TRUE(dp_->post([&ran](dataplane::DataPath&) { ran = true; }));
  dp_.reset();
  EXPECT_FALSE(ran);
  EXPECT_EQ(if_nametoindex(name.c_str()), 0u);
  EXPECT_FALSE(std::filesystem::exists(path));
}

}  // namespace
}  // namespace faraday::control
