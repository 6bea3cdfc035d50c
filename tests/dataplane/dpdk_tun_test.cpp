// dpdk_tun_test: ping through two DPDK data paths with real kernel interfaces on
// the inner side. As root: two network namespaces, each with a TUN interface
// made by DPDK's net_tun PMD (plugged in at run time from inside the namespace)
// and the harness's tunnel address on it (192.168.0.1/24, 192.168.0.2/24). A
// dpdk::Lcore per node joins its TUN to an underlay of two rings. `ping` in the
// first namespace must get its replies from the second namespace's kernel: ARP
// on the underlay, the handshake, the echo request sealed, opened and written
// to the far TUN, and the reply back the same way. Part of dpdk_port_test's
// program (one EAL per process).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <rte_dev.h>
#include <rte_eth_ring.h>
#include <rte_ring.h>
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>

#include "dataplane/dpdk_lcore.h"
#include "tests/dataplane/dpdk_helpers.h"
#include "tests/dataplane/harness.h"

namespace faraday::dataplane::dpdk {
namespace {

using testing::Network;
using testing::ring_port;
using testing::underlay;

bool run(const std::string& cmd) {
  return std::system((cmd + " >/dev/null 2>&1").c_str()) == 0;
}

// Enters namespace `ns` on this thread, or fails the test.
bool enter(const std::string& ns) {
  const int fd = ::open(("/run/netns/" + ns).c_str(), O_RDONLY | O_CLOEXEC);
  const bool ok = fd >= 0 && ::setns(fd, CLONE_NEWNET) == 0;
  if (fd >= 0) ::close(fd);
  EXPECT_TRUE(ok) << "cannot enter namespace " << ns;
  return ok;
}

// A TUN interface `ifname` in namespace `ns`, driven by net_tun, up with `address`.
std::unique_ptr<Port> tun_in(const std::string& ns, const std::string& device,
                             const std::string& ifname, const std::string& address) {
  std::unique_ptr<Port> port;
  // The PMD opens /dev/net/tun in the namespace of the thread that plugs it in.
  std::thread t([&] {
    if (!enter(ns)) return;
    const std::string args = device + ",iface=" + ifname;
    EXPECT_EQ(rte_dev_probe(args.c_str()), 0) << args;
    Result<std::unique_ptr<Port>> opened = Port::open({.device = args});
    EXPECT_TRUE(opened) << opened.error();
    if (opened) port = std::move(*opened);
  });
  t.join();
  EXPECT_TRUE(run("ip -n " + ns + " addr add " + address + " dev " + ifname) &&
              run("ip -n " + ns + " link set " + ifname + " up"))
      << "cannot configure " << ifname << " in " << ns;
  return port;
}

TEST(DpdkTun, PingThroughTwoLcoresBetweenKernelTunInterfaces) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root (network namespaces, TUN)";
  const std::string tag = std::to_string(::getpid());
  const std::string ns_a = "fdtun-a-" + tag, ns_b = "fdtun-b-" + tag;
  ASSERT_TRUE(run("ip netns add " + ns_a) && run("ip netns add " + ns_b));
  struct Cleanup {
    std::string a, b;
    ~Cleanup() {
      run("ip netns del " + a);
      run("ip netns del " + b);
    }
  } cleanup{ns_a, ns_b};

  Network net;
  rte_ring* a_to_b = testing::make_ring("tun-ab");
  rte_ring* b_to_a = testing::make_ring("tun-ba");
  ASSERT_TRUE(a_to_b && b_to_a);
  std::unique_ptr<Port> wire_a = ring_port("tunwire_a0", b_to_a, a_to_b);
  std::unique_ptr<Port> wire_b = ring_port("tunwire_b0", a_to_b, b_to_a);
  std::unique_ptr<Port> tun_a = tun_in(ns_a, "net_tun3", "fdtun0", "192.168.0.1/24");
  std::unique_ptr<Port> tun_b = tun_in(ns_b, "net_tun4", "fdtun1", "192.168.0.2/24");
  ASSERT_TRUE(wire_a && wire_b && tun_a && tun_b);
  UnderlayLink link_a(underlay(*parse_mac("02:00:00:00:00:0a"), net.a.source));
  UnderlayLink link_b(underlay(*parse_mac("02:00:00:00:00:0b"), net.b.source));
  Lcore lcore_a(net.a.device, net.clock, *tun_a, *wire_a, link_a);
  Lcore lcore_b(net.b.device, net.clock, *tun_b, *wire_b, link_b);

  // ping runs in the first namespace while this thread runs both lcores.
  const pid_t ping = ::fork();
  ASSERT_GE(ping, 0);
  if (ping == 0) {
    ::execlp("ip", "ip", "netns", "exec", ns_a.c_str(), "ping", "-c", "3", "-i", "0.2", "-W", "5",
             "-q", "192.168.0.2", static_cast<char*>(nullptr));
    ::_exit(127);
  }
  int status = -1;
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < until && ::waitpid(ping, &status, WNOHANG) == 0) {
    lcore_a.poll();
    lcore_b.poll();
  }
  if (status == -1) {
    ::kill(ping, SIGKILL);
    ::waitpid(ping, &status, 0);
  }
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "ping got no reply";
  EXPECT_EQ(net.b.counters().handshakes_completed, 1u);
  EXPECT_GE(lcore_b.counters().inner_tx, 3u);  // the echo requests, to b's kernel
  EXPECT_GE(lcore_a.counters().inner_tx, 3u);  // the replies, to a's kernel
}

}  // namespace
}  // namespace faraday::dataplane::dpdk
