// udp_group_test.cpp: UdpPortGroup, N sockets on one port with SO_REUSEPORT:
// the kernel spreads the flows over them and loses none; one socket is a plain
// UdpPort; a busy port is refused whoever holds it, and port 0 never joins
// someone else's group; a port change moves every socket.

#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "dataplane/packet.h"
#include "dataplane/udp_port.h"

namespace faraday::dataplane {
namespace {

int reuseport_of(int fd) {
  int on = -1;
  socklen_t len = sizeof(on);
  ::getsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, &len);
  return on;
}

// A plain dual-stack socket on [::]:port, with or without SO_REUSEPORT; -1 if
// the bind fails. Its port in *bound.
int raw_socket(uint16_t port, bool reuseport, uint16_t* bound = nullptr) {
  int s = ::socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  int off = 0, on = 1;
  ::setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off));
  if (reuseport) ::setsockopt(s, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on));
  sockaddr_in6 sa{};
  sa.sin6_family = AF_INET6;
  sa.sin6_port = htons(port);
  if (::bind(s, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0) {
    ::close(s);
    return -1;
  }
  socklen_t len = sizeof(sa);
  ::getsockname(s, reinterpret_cast<sockaddr*>(&sa), &len);
  if (bound) *bound = ntohs(sa.sin6_port);
  return s;
}

uint16_t free_port() {
  uint16_t port = 0;
  int s = raw_socket(0, false, &port);
  ::close(s);
  return port;
}

sockaddr_in loopback(uint16_t port) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return sa;
}

// Sends `per_flow` datagrams {flow, seq} from each of `flows` sockets (one source
// port each) to 127.0.0.1:group.port(), then receives on every member: each
// datagram must arrive exactly once, each flow on one member. Returns how many
// datagrams each member received.
std::vector<size_t> send_flows(UdpPortGroup& group, uint32_t flows, uint32_t per_flow) {
  std::vector<int> clients;
  for (uint32_t f = 0; f < flows; ++f) {
    int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in any = loopback(0);
    EXPECT_EQ(::bind(s, reinterpret_cast<sockaddr*>(&any), sizeof(any)), 0);
    clients.push_back(s);
  }
  sockaddr_in to = loopback(group.port());
  for (uint32_t seq = 0; seq < per_flow; ++seq)
    for (uint32_t f = 0; f < flows; ++f) {
      uint32_t payload[2] = {f, seq};
      EXPECT_EQ(::sendto(clients[f], payload, sizeof(payload), 0, reinterpret_cast<sockaddr*>(&to),
                         sizeof(to)),
                static_cast<ssize_t>(sizeof(payload)));
    }
  for (int s : clients) ::close(s);

  std::map<std::pair<uint32_t, uint32_t>, int> copies;
  std::map<uint32_t, std::set<size_t>> members_of;
  std::vector<size_t> per_member(group.size(), 0);
  PacketArena arena(kBurstSize);
  size_t total = 0;
  for (int round = 0; round < 200 && total < flows * per_flow; ++round) {
    std::vector<pollfd> fds;
    for (const UdpPort& p : group.ports()) fds.push_back({p.fd(), POLLIN, 0});
    ::poll(fds.data(), fds.size(), 10);
    for (size_t m = 0; m < group.size(); ++m) {
      size_t n;
      while ((n = group[m].recv_burst(arena.packets())) != 0) {
        for (size_t k = 0; k < n; ++k) {
          const Packet& p = arena.packets()[k];
          uint32_t payload[2];
          if (p.length != sizeof(payload)) continue;
          std::memcpy(payload, p.data(), sizeof(payload));
          ++copies[{payload[0], payload[1]}];
          members_of[payload[0]].insert(m);
          ++per_member[m];
          ++total;
        }
      }
    }
  }
  EXPECT_EQ(copies.size(), size_t{flows} * per_flow) << "every datagram arrives";
  for (const auto& [key, n] : copies)
    EXPECT_EQ(n, 1) << "flow " << key.first << " seq " << key.second;
  for (const auto& [flow, members] : members_of) EXPECT_EQ(members.size(), 1u) << "flow " << flow;
  return per_member;
}

TEST(UdpPortGroup, OneSocketIsAPlainUdpPort) {
  auto g = UdpPortGroup::open(0, 1);
  ASSERT_TRUE(g.ok()) << g.error();
  ASSERT_EQ(g->size(), 1u);
  EXPECT_FALSE(g->reuseport());
  EXPECT_NE(g->port(), 0);
  EXPECT_EQ((*g)[0].port(), g->port());
  EXPECT_EQ(reuseport_of((*g)[0].fd()), 0);

  // A busy port is refused as a single UdpPort refuses it, with the same words.
  auto busy = UdpPortGroup::open(g->port(), 1);
  ASSERT_FALSE(busy.ok());
  auto single = UdpPort::open(g->port());
  ASSERT_FALSE(single.ok());
  EXPECT_EQ(busy.error(), single.error());
  EXPECT_NE(busy.error().find("Address already in use"), std::string::npos) << busy.error();
}

TEST(UdpPortGroup, TwoSocketsShareOnePortAndSplitTheFlows) {
  auto g = UdpPortGroup::open(0, 2);
  ASSERT_TRUE(g.ok()) << g.error();
  ASSERT_EQ(g->size(), 2u);
  EXPECT_TRUE(g->reuseport());
  for (const UdpPort& p : g->ports()) {
    EXPECT_EQ(p.port(), g->port());
    EXPECT_EQ(reuseport_of(p.fd()), 1);
    EXPECT_EQ(p.dual_stack(), g->dual_stack());
  }
  EXPECT_NE((*g)[0].fd(), (*g)[1].fd());

  std::vector<size_t> got = send_flows(*g, 64, 4);
  EXPECT_GT(got[0], 0u) << "member 0 got none of 64 flows";
  EXPECT_GT(got[1], 0u) << "member 1 got none of 64 flows";
  EXPECT_EQ((*g)[0].counters().rx_packets, got[0]);  // each counts its own
  EXPECT_EQ((*g)[1].counters().rx_packets, got[1]);
  std::printf("[          ] 64 flows x 4: member 0 got %zu, member 1 %zu\n", got[0], got[1]);

  // Either member sends from the group's port.
  int client = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_in at = loopback(0);
  ASSERT_EQ(::bind(client, reinterpret_cast<sockaddr*>(&at), sizeof(at)), 0);
  socklen_t len = sizeof(at);
  ::getsockname(client, reinterpret_cast<sockaddr*>(&at), &len);
  Endpoint to = *Endpoint::parse("127.0.0.1:" + std::to_string(ntohs(at.sin_port)));
  PacketArena tx(1);
  for (UdpPort& p : g->ports()) {
    Packet& pkt = tx.packets()[0];
    pkt.reset();
    pkt.length = 3;
    std::memcpy(pkt.data(), "hey", 3);
    pkt.endpoint = to;
    ASSERT_EQ(p.send_burst(tx.packets()), 1u);
    pollfd pf{client, POLLIN, 0};
    ASSERT_EQ(::poll(&pf, 1, 1000), 1);
    sockaddr_in from{};
    socklen_t fl = sizeof(from);
    char buf[8];
    ASSERT_EQ(::recvfrom(client, buf, sizeof(buf), 0, reinterpret_cast<sockaddr*>(&from), &fl), 3);
    EXPECT_EQ(ntohs(from.sin_port), g->port());
  }
  ::close(client);
}

// A group never shares a port that someone holds: not with a plain socket, and
// not with a SO_REUSEPORT socket of the same user, which a SO_REUSEPORT bind
// alone would silently join.
TEST(UdpPortGroup, ABusyPortIsRefusedWhoeverHoldsIt) {
  uint16_t port = 0;
  int plain = raw_socket(0, false, &port);
  ASSERT_GE(plain, 0);
  auto r = UdpPortGroup::open(port, 2);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().find("Address already in use"), std::string::npos) << r.error();
  ::close(plain);

  int foreign = raw_socket(0, true, &port);
  ASSERT_GE(foreign, 0);
  int joiner = raw_socket(port, true);  // the risk: same user, SO_REUSEPORT, it joins
  EXPECT_GE(joiner, 0);
  if (joiner >= 0) ::close(joiner);
  r = UdpPortGroup::open(port, 2);
  ASSERT_FALSE(r.ok()) << "joined someone else's reuseport group";
  EXPECT_NE(r.error().find("Address already in use"), std::string::npos) << r.error();
  EXPECT_FALSE(UdpPort::open(port).ok());
  ::close(foreign);
}

// Port 0: the kernel may give a SO_REUSEPORT socket a port that another
// SO_REUSEPORT socket of the same user has. In a namespace of our own with one
// ephemeral port, held by such a socket, the group must fail rather than join.
TEST(UdpPortGroup, PortZeroNeverJoinsSomeoneElsesGroup) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root (a network namespace)";
  std::thread t([] {
    if (::unshare(CLONE_NEWNET) != 0) {
      ADD_FAILURE() << "unshare(CLONE_NEWNET): " << std::strerror(errno);
      return;
    }
    std::ofstream("/proc/sys/net/ipv4/ip_local_port_range") << "40000 40000\n";
    uint16_t port = 0;
    int foreign = raw_socket(40000, true);
    ASSERT_GE(foreign, 0);
    int joiner = raw_socket(0, true, &port);  // the hazard the probe avoids
    ASSERT_GE(joiner, 0);
    EXPECT_EQ(port, 40000) << "the kernel picked another port: the control did not work";
    ::close(joiner);

    auto r = UdpPortGroup::open(0, 2);
    EXPECT_FALSE(r.ok()) << "joined someone else's group on port " << r->port();
    ::close(foreign);
    r = UdpPortGroup::open(0, 2);  // once the port is free, it is ours
    ASSERT_TRUE(r.ok()) << r.error();
    EXPECT_EQ(r->port(), 40000);
  });
  t.join();
}

TEST(UdpPortGroup, APortChangeMovesEverySocket) {
  auto g = UdpPortGroup::open(0, 2);
  ASSERT_TRUE(g.ok()) << g.error();
  uint16_t old_port = g->port();

  auto same = g->reopen(old_port);
  ASSERT_FALSE(same.ok()) << "the same port is in use, by this group";

  uint16_t new_port = free_port();
  auto moved = g->reopen(new_port);
  ASSERT_TRUE(moved.ok()) << moved.error();
  ASSERT_EQ(moved->size(), 2u);
  EXPECT_EQ(moved->port(), new_port);
  for (const UdpPort& p : moved->ports()) {
    EXPECT_EQ(p.port(), new_port);
    EXPECT_EQ(reuseport_of(p.fd()), 1);
  }
  EXPECT_FALSE(UdpPort::open(old_port).ok()) << "the old group holds its port until replaced";

  *g = std::move(*moved);
  EXPECT_EQ(g->port(), new_port);
  auto old_free = UdpPort::open(old_port);
  EXPECT_TRUE(old_free.ok()) << "replaced, the old group let go of its port: " << old_free.error();
  std::vector<size_t> got = send_flows(*g, 64, 2);
  EXPECT_GT(got[0], 0u);
  EXPECT_GT(got[1], 0u);

  auto any = g->reopen(0);
  ASSERT_TRUE(any.ok()) << any.error();
  EXPECT_NE(any->port(), g->port());
  EXPECT_EQ(any->size(), 2u);
}

TEST(UdpPortGroup, SetMarkReachesEveryMember) {
  if (::geteuid() != 0) GTEST_SKIP() << "SO_MARK needs CAP_NET_ADMIN";
  auto g = UdpPortGroup::open(0, 3);
  ASSERT_TRUE(g.ok()) << g.error();
  ASSERT_TRUE(g->set_mark(0x42).ok());
  for (const UdpPort& p : g->ports()) {
    uint32_t mark = 0;
    socklen_t len = sizeof(mark);
    ASSERT_EQ(::getsockopt(p.fd(), SOL_SOCKET, SO_MARK, &mark, &len), 0);
    EXPECT_EQ(mark, 0x42u);
  }
}

TEST(UdpPortGroup, CountIsChecked) {
  EXPECT_FALSE(UdpPortGroup::open(0, 0).ok());
  EXPECT_FALSE(UdpPortGroup::open(0, UdpPortGroup::kMaxSockets + 1).ok());
}

}  // namespace
}  // namespace faraday::dataplane
