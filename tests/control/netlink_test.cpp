// netlink_test.cpp: control/netlink.h against the real kernel.
//
//   +------------------ fresh network namespace (one per test) ------------------+
//   |  lo (down)      t0: persistent TUN (`ip tuntap add`), no reader,           |
//   |                 so NO-CARRIER: routes and addresses still install          |
//   +-----------------------------------------------------------------------------+
//
// Each test unshares a new network namespace on the test thread, opens its Socket
// there, and returns to the original namespace afterwards; the namespace and t0
// vanish with it. Skipped when not root.
#include "control/netlink.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <set>
#include <string>
#include <vector>

#include "tests/lib/programs.h"

namespace faraday::control::netlink {
namespace {

using dataplane::Prefix;

Prefix P(const char* text) {
  auto p = Prefix::parse(text);
  EXPECT_TRUE(p.has_value()) << text;
  return p.value_or(Prefix{});
}

Address A(const char* text) {
  auto a = parse_address(text);
  EXPECT_TRUE(a.has_value()) << text;
  return a.value_or(Address{});
}

class NetlinkTest : public ::testing::Test {
 protected:
  static constexpr const char* kIf = "t0";

  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root (network namespaces, interfaces)";
    original_ns_ = ::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    ASSERT_GE(original_ns_, 0) << std::strerror(errno);
    ASSERT_EQ(unshare(CLONE_NEWNET), 0) << std::strerror(errno);
    ASSERT_EQ(std::system("ip tuntap add t0 mode tun"), 0);
    auto s = Socket::open();
    ASSERT_TRUE(s.ok()) << s.error();
    sock_.emplace(std::move(*s));
  }

  void TearDown() override {
    sock_.reset();
    if (original_ns_ >= 0) {
      EXPECT_EQ(setns(original_ns_, CLONE_NEWNET), 0) << std::strerror(errno);
      close(original_ns_);
    }
  }

  Socket& nl() { return *sock_; }

  Link link(const std::string& name = kIf) {
    auto l = nl().link(name);
    EXPECT_TRUE(l.ok()) << l.error();
    return l ? *l : Link{};
  }

  std::vector<Address> addresses() {
    auto a = nl().addresses(kIf);
    EXPECT_TRUE(a.ok()) << a.error();
    return a ? *a : std::vector<Address>{};
  }

  std::vector<Route> routes() {
    auto r = nl().routes(kIf);
    EXPECT_TRUE(r.ok()) << r.error();
    return r ? *r : std::vector<Route>{};
  }

  // The destinations of our routes (kRouteProtocol), as text, sorted.
  std::set<std::string> our_routes() {
    std::set<std::string> out;
    for (const auto& r : routes())
      if (r.protocol == kRouteProtocol) out.insert(r.dst.to_string());
    return out;
  }

  bool has_address(const Address& a) {
    auto all = addresses();
    return std::find(all.begin(), all.end(), a) != all.end();
  }

  int original_ns_ = -1;
  std::optional<Socket> sock_;
};

#define EXPECT_OK(expr)                                              \
  do {                                                               \
    Status s_ = (expr);                                              \
    EXPECT_TRUE(s_.ok()) << #expr << ": " << (s_ ? "" : s_.error()); \
  } while (0)

TEST(NetlinkAddress, ParseKeepsHostBits) {
  auto a = parse_address("10.0.0.1/24");
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->to_string(), "10.0.0.1/24");
  EXPECT_EQ(parse_address("fd00::1/64")->to_string(), "fd00::1/64");
  EXPECT_EQ(parse_address("192.0.2.7")->to_string(), "192.0.2.7/32");
  EXPECT_EQ(parse_address("fd00::7")->to_string(), "fd00::7/128");
  for (const char* bad : {"", "10.0.0.1/", "10.0.0.1/33", "fd00::1/129", "10.0.0.1/24/1",
                          "10.0.0.1/x", "host/24", "/24"}) {
    EXPECT_FALSE(parse_address(bad).has_value()) << bad;
  }
}

TEST_F(NetlinkTest, IfindexMatchesKernel) {
  auto index = nl().ifindex(kIf);
  ASSERT_TRUE(index.ok()) << index.error();
  EXPECT_GT(*index, 0);
  EXPECT_EQ(*index, link().index);
  auto lo = nl().ifindex("lo");
  ASSERT_TRUE(lo.ok());
  EXPECT_EQ(*lo, 1);
}

TEST_F(NetlinkTest, SetMtuAndReadBack) {
  for (uint32_t mtu : {1420u, 1280u, 9000u, 1500u}) {
    EXPECT_OK(nl().set_mtu(kIf, mtu));
    EXPECT_EQ(link().mtu, mtu);
  }
}

TEST_F(NetlinkTest, SetUpAndDown) {
  EXPECT_FALSE(link().up);
  EXPECT_OK(nl().set_up(kIf, true));
  EXPECT_TRUE(link().up);
  EXPECT_OK(nl().set_up(kIf, true));  // again: no change, no error
  EXPECT_TRUE(link().up);
  EXPECT_OK(nl().set_up(kIf, false));
  EXPECT_FALSE(link().up);
}

TEST_F(NetlinkTest, AddressesAddedTwiceAndRemovedTwice) {
  EXPECT_OK(nl().set_up(kIf, true));
  const Address v4 = A("10.0.0.1/24");
  const Address v6 = A("fd00::1/64");
  const Address host4 = A("10.99.0.7");
  const std::vector<Address> each = {v4, v6, host4};
  for (int i = 0; i < 2; ++i)
    for (const Address& a : each) EXPECT_OK(nl().add_address(kIf, a));
  for (const Address& a : each) EXPECT_TRUE(has_address(a)) << a.to_string();
  // Exactly one of each.
  auto all = addresses();
  EXPECT_EQ(std::count(all.begin(), all.end(), v4), 1);
  EXPECT_EQ(std::count(all.begin(), all.end(), v6), 1);
  // IFA_F_NODAD: the v6 address is usable at once, not tentative.
  std::string shown = testing::run_shell("ip -6 addr show dev t0").out;
  EXPECT_NE(shown.find("nodad"), std::string::npos) << shown;
  EXPECT_EQ(shown.find("tentative"), std::string::npos) << shown;

  for (int i = 0; i < 2; ++i)
    for (const Address& a : each) EXPECT_OK(nl().remove_address(kIf, a));
  for (const Address& a : each) EXPECT_FALSE(has_address(a)) << a.to_string();
}

TEST_F(NetlinkTest, AddressOnDownLinkThenUp) {
  EXPECT_OK(nl().add_address(kIf, A("10.0.0.1/24")));
  EXPECT_OK(nl().add_address(kIf, A("fd00::1/64")));
  EXPECT_OK(nl().set_up(kIf, true));
  EXPECT_TRUE(has_address(A("10.0.0.1/24")));
  EXPECT_TRUE(has_address(A("fd00::1/64")));
}

TEST_F(NetlinkTest, RoutesAddedListedReplacedRemoved) {
  EXPECT_OK(nl().set_up(kIf, true));
  const std::vector<Prefix> prefixes = {P("10.1.0.0/16"), P("10.2.3.0/24"), P("192.0.2.7/32"),
                                        P("fd10::/64"),   P("fd20:1::/48"), P("fd30::5/128")};
  for (const auto& p : prefixes) EXPECT_OK(nl().add_route(kIf, p));
  const std::set<std::string> want = {"10.1.0.0/16", "10.2.3.0/24", "192.0.2.7/32",
                                      "fd10::/64",   "fd20:1::/48", "fd30::5/128"};
  EXPECT_EQ(our_routes(), want);

  // Adding again replaces: still one route per prefix.
  for (const auto& p : prefixes) EXPECT_OK(nl().add_route(kIf, p));
  size_t ours = 0;
  for (const auto& r : routes()) ours += r.protocol == kRouteProtocol;
  EXPECT_EQ(ours, prefixes.size());
  EXPECT_EQ(our_routes(), want);

  // An unmasked prefix is masked first.
  Prefix unmasked = P("10.3.0.0/16");
  unmasked.addr[3] = 5;  // 10.3.0.5/16
  EXPECT_OK(nl().add_route(kIf, unmasked));
  EXPECT_EQ(our_routes().count("10.3.0.0/16"), 1u);
  EXPECT_OK(nl().remove_route(kIf, unmasked));
  EXPECT_EQ(our_routes(), want);

  // The kernel sees them as `ip route` does.
  std::string shown = testing::run_shell("ip route show dev t0").out;
  EXPECT_NE(shown.find("10.1.0.0/16 proto 70 scope link"), std::string::npos) << shown;

  for (int i = 0; i < 2; ++i)
    for (const auto& p : prefixes) EXPECT_OK(nl().remove_route(kIf, p));
  EXPECT_TRUE(our_routes().empty());
}

TEST_F(NetlinkTest, AddRouteTakesOverAnExistingRoute) {
  EXPECT_OK(nl().set_up(kIf, true));
  ASSERT_EQ(std::system("ip route add 10.9.0.0/16 dev t0"), 0);
  ASSERT_EQ(std::system("ip -6 route add fd90::/64 dev t0"), 0);
  auto before = routes();
  ASSERT_EQ(before.size(), 2u);
  EXPECT_NE(before[0].protocol, kRouteProtocol);
  EXPECT_OK(nl().add_route(kIf, P("10.9.0.0/16")));
  EXPECT_OK(nl().add_route(kIf, P("fd90::/64")));
  auto after = routes();
  ASSERT_EQ(after.size(), 2u);
  for (const auto& r : after) EXPECT_EQ(r.protocol, kRouteProtocol) << r.dst.to_string();
}

TEST_F(NetlinkTest, ListsOnlyThisInterfacesMainTableRoutes) {
  EXPECT_OK(nl().set_up(kIf, true));
  ASSERT_EQ(std::system("ip tuntap add t1 mode tun && ip link set t1 up"), 0);
  EXPECT_OK(nl().add_route("t1", P("10.50.0.0/16")));
  ASSERT_EQ(std::system("ip route add 10.51.0.0/16 dev t0 table 100"), 0);
  EXPECT_OK(nl().add_route(kIf, P("10.52.0.0/16")));
  EXPECT_EQ(our_routes(), std::set<std::string>{"10.52.0.0/16"});
  auto t1 = nl().routes("t1");
  ASSERT_TRUE(t1.ok());
  ASSERT_EQ(t1->size(), 1u);
  EXPECT_EQ((*t1)[0].dst.to_string(), "10.50.0.0/16");
  // remove_route only removes the route through the named interface.
  EXPECT_OK(nl().remove_route(kIf, P("10.50.0.0/16")));
  EXPECT_EQ(nl().routes("t1")->size(), 1u);
}

// What the control thread does when membership changes: add the prefixes it wants,
// remove its own routes it no longer wants, leave the kernel's routes alone.
TEST_F(NetlinkTest, ReconcileAddsMissingAndRemovesStale) {
  EXPECT_OK(nl().set_up(kIf, true));
  EXPECT_OK(nl().add_address(kIf, A("10.0.0.1/24")));  // kernel adds 10.0.0.0/24

  auto reconcile = [&](const std::vector<Prefix>& wanted) {
    auto current = routes();
    for (const auto& p : wanted) {
      bool present = std::any_of(current.begin(), current.end(), [&](const Route& r) {
        return r.dst == p.masked() && r.protocol == kRouteProtocol;
      });
      if (!present) EXPECT_OK(nl().add_route(kIf, p));
    }
    for (const auto& r : current) {
      if (r.protocol != kRouteProtocol) continue;
      bool keep = std::any_of(wanted.begin(), wanted.end(),
                              [&](const Prefix& p) { return p.masked() == r.dst; });
      if (!keep) EXPECT_OK(nl().remove_route(kIf, r.dst));
    }
  };

  reconcile({P("10.1.0.0/16"), P("10.2.0.0/16"), P("fd01::/64")});
  EXPECT_EQ(our_routes(), (std::set<std::string>{"10.1.0.0/16", "10.2.0.0/16", "fd01::/64"}));

  reconcile({P("10.2.0.0/16"), P("10.3.0.0/16"), P("fd02::/64"), P("fd03::/64")});
  EXPECT_EQ(our_routes(),
            (std::set<std::string>{"10.2.0.0/16", "10.3.0.0/16", "fd02::/64", "fd03::/64"}));

  // The subnet route of the interface's own address is the kernel's and survives.
  bool subnet = false;
  for (const auto& r : routes()) subnet |= r.dst.to_string() == "10.0.0.0/24";
  EXPECT_TRUE(subnet);

  reconcile({});
  EXPECT_TRUE(our_routes().empty());
  subnet = false;
  for (const auto& r : routes()) subnet |= r.dst.to_string() == "10.0.0.0/24";
  EXPECT_TRUE(subnet);
}

TEST_F(NetlinkTest, DeleteLinkIsIdempotent) {
  EXPECT_OK(nl().delete_link(kIf));
  EXPECT_FALSE(nl().link(kIf).ok());
  EXPECT_OK(nl().delete_link(kIf));
}

TEST_F(NetlinkTest, MissingInterfaceErrorsNameOperationAndInterface) {
  const std::string name = "nosuch0";
  auto expect_clear = [&](const auto& result, const std::string& op) {
    ASSERT_FALSE(result.ok()) << op;
    const std::string& err = result.error();
    EXPECT_NE(err.find(name), std::string::npos) << err;
    EXPECT_NE(err.find("No such device"), std::string::npos) << err;
    EXPECT_NE(err.find("no such interface"), std::string::npos) << err;
    EXPECT_EQ(err.rfind("netlink: ", 0), 0u) << err;
  };
  expect_clear(nl().link(name), "link");
  expect_clear(nl().ifindex(name), "ifindex");
  expect_clear(nl().set_mtu(name, 1420), "set_mtu");
  expect_clear(nl().set_up(name, true), "set_up");
  expect_clear(nl().add_address(name, A("10.0.0.1/24")), "add_address");
  expect_clear(nl().remove_address(name, A("10.0.0.1/24")), "remove_address");
  expect_clear(nl().add_route(name, P("10.1.0.0/16")), "add_route");
  expect_clear(nl().remove_route(name, P("10.1.0.0/16")), "remove_route");
  expect_clear(nl().routes(name), "routes");
  expect_clear(nl().addresses(name), "addresses");

  auto bad_name = nl().link("a-name-far-too-long-for-linux");
  ASSERT_FALSE(bad_name.ok());
  EXPECT_NE(bad_name.error().find("invalid interface name"), std::string::npos);
}

TEST_F(NetlinkTest, KernelRefusalsAreExplained) {
  Status mtu = nl().set_mtu(kIf, 10);
  ASSERT_FALSE(mtu.ok());
  EXPECT_NE(mtu.error().find("set MTU 10 on t0: Invalid argument"), std::string::npos)
      << mtu.error();

  // A route through a link that is down: the kernel says so.
  Status down = nl().add_route(kIf, P("10.1.0.0/16"));
  ASSERT_FALSE(down.ok());
  EXPECT_NE(down.error().find("add route 10.1.0.0/16 on t0: Network is down"), std::string::npos)
      << down.error();

  Prefix none;  // AF_UNSPEC
  EXPECT_FALSE(nl().add_route(kIf, none).ok());
  EXPECT_FALSE(nl().add_address(kIf, none).ok());
}

TEST_F(NetlinkTest, SocketIsMovable) {
  Socket moved = std::move(*sock_);
  auto index = moved.ifindex(kIf);
  EXPECT_TRUE(index.ok());
  *sock_ = std::move(moved);
  EXPECT_TRUE(nl().ifindex(kIf).ok());
}

}  // namespace
}  // namespace faraday::control::netlink
