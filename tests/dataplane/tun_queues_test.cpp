// tun_queues_test.cpp: a multi-queue TUN (IFF_MULTI_QUEUE) as N workers would
// use it: the kernel spreads the host's flows over the queues, each packet on
// exactly one; a packet written on any queue is delivered, and the host's
// replies of that flow come back on the queue it was written on; the interface
// lives while any queue does; the fallbacks to one queue (root only).
//
//   64 UDP sockets on 10.216.x.1 --sendto 10.216.x.2:9--> TUN queue 0 or 1

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "dataplane/packet.h"
#include "dataplane/tun_port.h"

namespace faraday::dataplane {
namespace {

bool can_make_tuns() {
  return ::geteuid() == 0 && ::access("/dev/net/tun", R_OK | W_OK) == 0;
}

std::string tun_name(char tag) {
  return "ftq" + std::to_string(::getpid() % 100000) + tag;
}

uint8_t subnet_byte() {
  return static_cast<uint8_t>(::getpid() % 250);
}

bool ioctl_ifr(unsigned long req, ifreq& ifr) {
  int s = ::socket(AF_INET, SOCK_DGRAM, 0);
  bool ok = ::ioctl(s, req, &ifr) == 0;
  ::close(s);
  return ok;
}

// Gives name self/24 and brings it up.
bool address_and_up(const std::string& name, const std::string& self) {
  auto set_addr = [&](unsigned long req, const std::string& addr) {
    ifreq a{};
    std::strncpy(a.ifr_name, name.c_str(), IFNAMSIZ - 1);
    auto* sin = reinterpret_cast<sockaddr_in*>(&a.ifr_addr);
    sin->sin_family = AF_INET;
    ::inet_pton(AF_INET, addr.c_str(), &sin->sin_addr);
    return ioctl_ifr(req, a);
  };
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, name.c_str(), IFNAMSIZ - 1);
  if (!set_addr(SIOCSIFADDR, self) || !set_addr(SIOCSIFNETMASK, "255.255.255.0") ||
      !ioctl_ifr(SIOCGIFFLAGS, ifr))
    return false;
  ifr.ifr_flags |= IFF_UP;
  return ioctl_ifr(SIOCSIFFLAGS, ifr);
}

sockaddr_in v4(const std::string& addr, uint16_t port) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  ::inet_pton(AF_INET, addr.c_str(), &sa.sin_addr);
  return sa;
}

uint16_t be16(const uint8_t* p) {
  return static_cast<uint16_t>(p[0] << 8 | p[1]);
}

// An IPv4 UDP packet the host sent into the TUN: ports and payload.
struct Udp4 {
  uint16_t sport = 0;
  uint16_t dport = 0;
  const uint8_t* payload = nullptr;
  size_t length = 0;
};
std::optional<Udp4> parse_udp4(const Packet& p) {
  const uint8_t* ip = p.data();
  if (p.length < 28 || ip[0] != 0x45 || ip[9] != 17) return std::nullopt;
  return Udp4{be16(ip + 20), be16(ip + 22), ip + 28, p.length - 28u};
}

// Reads every queue for about two seconds, or until done() holds; on_packet(q,
// packet) for each packet read from queue q.
template <typename OnPacket, typename Done>
void read_queues(std::vector<TunPort>& queues, OnPacket on_packet, Done done) {
  PacketArena arena(kBurstSize);
  for (int round = 0; round < 200 && !done(); ++round) {
    std::vector<pollfd> fds;
    for (const TunPort& q : queues) fds.push_back({q.fd(), POLLIN, 0});
    ::poll(fds.data(), fds.size(), 10);
    for (size_t q = 0; q < queues.size(); ++q) {
      size_t n;
      while ((n = queues[q].read_burst(arena.packets())) != 0)
        for (size_t k = 0; k < n; ++k) on_packet(q, arena.packets()[k]);
    }
  }
}

void delete_link(const std::string& name) {
  (void)std::system(("ip link delete " + name + " 2>/dev/null").c_str());
}

// Every queue of a 2-queue TUN is its own port of the same interface.
std::vector<TunPort> open_two(const std::string& name, bool offload) {
  auto r = TunPort::open_queues(name, 1420, offload, 2);
  if (!r) {
    ADD_FAILURE() << r.error();
    return {};
  }
  return std::move(*r);
}

void flows_are_spread(bool offload) {
  if (!can_make_tuns()) GTEST_SKIP() << "needs root and /dev/net/tun";
  std::string name = tun_name(offload ? 'v' : 'p');
  std::vector<TunPort> queues = open_two(name, offload);
  ASSERT_EQ(queues.size(), 2u);
  for (const TunPort& q : queues) {
    EXPECT_EQ(q.name(), name);
    EXPECT_TRUE(q.multi_queue());
    EXPECT_TRUE(q.multi_queue_refused().empty());
    EXPECT_EQ(q.vnet_hdr(), offload) << q.offloads();
    EXPECT_TRUE(q.exists());
  }
  EXPECT_NE(queues[0].fd(), queues[1].fd());
  EXPECT_EQ(queues[0].offloads(), queues[1].offloads());
  std::string prefix = "10.216." + std::to_string(subnet_byte()) + ".";
  ASSERT_TRUE(address_and_up(name, prefix + "1"));

  // 64 flows (one source port each) of 4 datagrams each: payload = flow, seq.
  constexpr uint32_t kFlows = 64, kPerFlow = 4;
  std::vector<int> socks;
  sockaddr_in to = v4(prefix + "2", 9);
  for (uint32_t f = 0; f < kFlows; ++f) {
    int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in self = v4(prefix + "1", 0);
    ASSERT_EQ(::bind(s, reinterpret_cast<sockaddr*>(&self), sizeof(self)), 0);
    socks.push_back(s);
  }
  for (uint32_t seq = 0; seq < kPerFlow; ++seq)
    for (uint32_t f = 0; f < kFlows; ++f) {
      uint32_t payload[2] = {f, seq};
      ASSERT_EQ(::sendto(socks[f], payload, sizeof(payload), 0, reinterpret_cast<sockaddr*>(&to),
                         sizeof(to)),
                static_cast<ssize_t>(sizeof(payload)));
    }
  for (int s : socks) ::close(s);

  std::map<std::pair<uint32_t, uint32_t>, int> copies;  // (flow, seq) -> times read
  std::map<uint32_t, std::set<size_t>> queues_of;       // flow -> queues it came on
  size_t per_queue[2] = {0, 0};
  read_queues(
      queues,
      [&](size_t q, const Packet& p) {
        auto u = parse_udp4(p);
        if (!u || u->dport != 9 || u->length != 8) return;  // not ours (MLD and the like)
        uint32_t payload[2];
        std::memcpy(payload, u->payload, sizeof(payload));
        ++copies[{payload[0], payload[1]}];
        queues_of[payload[0]].insert(q);
        ++per_queue[q];
      },
      [&] { return per_queue[0] + per_queue[1] >= kFlows * kPerFlow; });

  EXPECT_EQ(copies.size(), kFlows * kPerFlow) << "every datagram arrives";
  for (const auto& [key, n] : copies)
    EXPECT_EQ(n, 1) << "flow " << key.first << " seq " << key.second;
  for (const auto& [flow, qs] : queues_of) EXPECT_EQ(qs.size(), 1u) << "flow " << flow;
  EXPECT_GT(per_queue[0], 0u) << "queue 0 got none of " << kFlows << " flows";
  EXPECT_GT(per_queue[1], 0u) << "queue 1 got none of " << kFlows << " flows";
  // Each queue counts what it read, and only that.
  EXPECT_GE(queues[0].counters().rx_packets, per_queue[0]);
  EXPECT_GE(queues[1].counters().rx_packets, per_queue[1]);
  std::printf("[          ] %zu flows of %u: queue 0 read %zu datagrams, queue 1 %zu\n",
              queues_of.size(), kFlows, per_queue[0], per_queue[1]);
  delete_link(name);
}

TEST(TunQueues, FlowsAreSpreadAndEachPacketArrivesOnceWithOffloads) {
  flows_are_spread(true);
}
TEST(TunQueues, FlowsAreSpreadAndEachPacketArrivesOncePlain) {
  flows_are_spread(false);
}

// An IPv4 UDP packet from from:sport to to:dport with an 8-byte payload; the UDP
// checksum is left 0 (none, which IPv4 allows).
void make_udp4(Packet& p, const std::string& from, uint16_t sport, const std::string& to,
               uint16_t dport, uint64_t payload) {
  p.reset();
  p.length = 20 + 8 + 8;
  uint8_t* ip = p.data();
  std::memset(ip, 0, p.length);
  ip[0] = 0x45;
  ip[2] = 0;
  ip[3] = static_cast<uint8_t>(p.length);
  ip[8] = 64;
  ip[9] = 17;
  ::inet_pton(AF_INET, from.c_str(), ip + 12);
  ::inet_pton(AF_INET, to.c_str(), ip + 16);
  uint32_t sum = 0;
  for (int i = 0; i < 20; i += 2) sum += be16(ip + i);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  uint16_t check = static_cast<uint16_t>(~sum);
  ip[10] = static_cast<uint8_t>(check >> 8);
  ip[11] = static_cast<uint8_t>(check);
  uint8_t* udp = ip + 20;
  udp[0] = static_cast<uint8_t>(sport >> 8);
  udp[1] = static_cast<uint8_t>(sport);
  udp[2] = static_cast<uint8_t>(dport >> 8);
  udp[3] = static_cast<uint8_t>(dport);
  udp[5] = 16;
  std::memcpy(udp + 8, &payload, sizeof(payload));
}

// Packets written on either queue reach the host; the host's answers of a flow
// come back on the queue that flow was written on (the driver's flow table).
TEST(TunQueues, WritesOnEveryQueueAreDeliveredAndRepliesFollowThem) {
  if (!can_make_tuns()) GTEST_SKIP() << "needs root and /dev/net/tun";
  std::string name = tun_name('w');
  std::vector<TunPort> queues = open_two(name, true);
  ASSERT_EQ(queues.size(), 2u);
  std::string prefix = "10.217." + std::to_string(subnet_byte()) + ".";
  std::string self = prefix + "1", peer = prefix + "2";
  ASSERT_TRUE(address_and_up(name, self));
  int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_in at = v4(self, 0);
  ASSERT_EQ(::bind(s, reinterpret_cast<sockaddr*>(&at), sizeof(at)), 0);
  socklen_t len = sizeof(at);
  ASSERT_EQ(::getsockname(s, reinterpret_cast<sockaddr*>(&at), &len), 0);
  uint16_t port = ntohs(at.sin_port);

  constexpr uint16_t kFlows = 16, kBase = 6000;
  PacketArena arena(1);
  for (uint16_t i = 0; i < kFlows; ++i) {
    Packet& p = arena.packets()[0];
    make_udp4(p, peer, kBase + i, self, port, i);
    ASSERT_EQ(queues[i % 2].write_burst(arena.packets()), 1u) << "flow " << i;
  }
  EXPECT_EQ(queues[0].counters().tx_packets, kFlows / 2);
  EXPECT_EQ(queues[1].counters().tx_packets, kFlows / 2);
  EXPECT_EQ(queues[0].counters().tx_errors + queues[1].counters().tx_errors, 0u);

  std::set<uint16_t> from;
  for (int tries = 0; tries < 200 && from.size() < kFlows; ++tries) {
    pollfd p{s, POLLIN, 0};
    ::poll(&p, 1, 10);
    sockaddr_in src{};
    socklen_t sl = sizeof(src);
    uint64_t payload = 0;
    if (::recvfrom(s, &payload, sizeof(payload), MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&src),
                   &sl) == sizeof(payload) &&
        payload == static_cast<uint64_t>(ntohs(src.sin_port) - kBase))
      from.insert(ntohs(src.sin_port));
  }
  EXPECT_EQ(from.size(), kFlows) << "every written datagram is delivered";

  for (uint16_t i = 0; i < kFlows; ++i) {
    sockaddr_in to = v4(peer, kBase + i);
    ASSERT_EQ(::sendto(s, "re", 2, 0, reinterpret_cast<sockaddr*>(&to), sizeof(to)), 2);
  }
  std::map<uint16_t, std::set<size_t>> reply_queues;
  read_queues(
      queues,
      [&](size_t q, const Packet& p) {
        auto u = parse_udp4(p);
        if (u && u->sport == port && u->length == 2) reply_queues[u->dport].insert(q);
      },
      [&] { return reply_queues.size() == kFlows; });
  ::close(s);
  ASSERT_EQ(reply_queues.size(), kFlows);
  for (const auto& [dport, qs] : reply_queues)
    EXPECT_EQ(qs, std::set<size_t>{static_cast<size_t>((dport - kBase) % 2)})
        << "reply of flow " << dport - kBase;
  delete_link(name);
}

// The interface lives while any queue does; once deleted, open_queue() does not
// make it anew.
TEST(TunQueues, TheInterfaceLivesWhileAnyQueueDoes) {
  if (!can_make_tuns()) GTEST_SKIP() << "needs root and /dev/net/tun";
  std::string name = tun_name('l');
  {
    std::vector<TunPort> queues = open_two(name, true);
    ASSERT_EQ(queues.size(), 2u);
    queues.erase(queues.begin());  // the first queue, the one that made it
    EXPECT_TRUE(queues[0].exists());
    EXPECT_NE(::if_nametoindex(name.c_str()), 0u);
    auto again = queues[0].open_queue();  // any queue can add one
    ASSERT_TRUE(again.ok()) << again.error();
    EXPECT_TRUE(again->multi_queue());
  }
  EXPECT_EQ(::if_nametoindex(name.c_str()), 0u) << "the last queue closed removes it";

  std::vector<TunPort> queues = open_two(name, true);
  ASSERT_EQ(queues.size(), 2u);
  delete_link(name);
  EXPECT_FALSE(queues[0].exists());
  EXPECT_FALSE(queues[1].exists());
  for (const TunPort& q : queues) {  // every queue is detached: poll says so
    pollfd p{q.fd(), POLLIN, 0};
    EXPECT_EQ(::poll(&p, 1, 0), 1);
    EXPECT_NE(p.revents & POLLERR, 0);
  }
  auto late = queues[0].open_queue();
  ASSERT_FALSE(late.ok());
  EXPECT_NE(late.error().find("gone"), std::string::npos) << late.error();
  EXPECT_EQ(::if_nametoindex(name.c_str()), 0u) << "open_queue() made the interface anew";
}

TEST(TunQueues, OneQueueWhenTheInterfaceExistsWithoutMultiQueue) {
  if (!can_make_tuns()) GTEST_SKIP() << "needs root and /dev/net/tun";
  std::string name = tun_name('s');
  ASSERT_EQ(std::system(("ip tuntap add dev " + name + " mode tun").c_str()), 0);
  {
    auto r = TunPort::open_queues(name, 1420, true, 4);
    ASSERT_TRUE(r.ok()) << r.error();
    ASSERT_EQ(r->size(), 1u);
    TunPort& only = r->front();
    EXPECT_FALSE(only.multi_queue());
    EXPECT_NE(only.multi_queue_refused().find("IFF_MULTI_QUEUE refused"), std::string::npos)
        << only.multi_queue_refused();
    EXPECT_TRUE(only.vnet_hdr()) << only.offloads();
    auto more = only.open_queue();
    ASSERT_FALSE(more.ok());
    EXPECT_EQ(more.error().rfind("TUN multi-queue unavailable: IFF_MULTI_QUEUE refused", 0), 0u)
        << more.error();
  }
  {
    // Asked for one queue, it says nothing was refused.
    auto r = TunPort::open(name, 1420, true);
    ASSERT_TRUE(r.ok()) << r.error();
    EXPECT_FALSE(r->multi_queue());
    EXPECT_TRUE(r->multi_queue_refused().empty());
    EXPECT_NE(r->open_queue().error().find("not requested"), std::string::npos);
  }
  EXPECT_NE(::if_nametoindex(name.c_str()), 0u) << "persistent: it stays";
  delete_link(name);
}

// A persistent multi-queue interface: we may attach when no one else holds a
// queue, not when someone does; a single-queue open is refused as before.
TEST(TunQueues, AMultiQueueInterfaceSomeoneHoldsIsRefused) {
  if (!can_make_tuns()) GTEST_SKIP() << "needs root and /dev/net/tun";
  std::string name = tun_name('m');
  ASSERT_EQ(std::system(("ip tuntap add dev " + name + " mode tun multi_queue").c_str()), 0);
  {
    std::vector<TunPort> queues = open_two(name, true);
    ASSERT_EQ(queues.size(), 2u);
    auto second = TunPort::open(name, 1420, true, true);
    ASSERT_FALSE(second.ok());
    EXPECT_NE(second.error().find("already attached"), std::string::npos) << second.error();
    auto single = TunPort::open(name, 1420, true, false);
    ASSERT_FALSE(single.ok());
    EXPECT_NE(single.error().find("Invalid argument"), std::string::npos) << single.error();
  }
  EXPECT_NE(::if_nametoindex(name.c_str()), 0u) << "persistent: it stays";

  // A queue attached by hand (as another process would) is seen too.
  int foreign = ::open("/dev/net/tun", O_RDWR | O_CLOEXEC);
  ASSERT_GE(foreign, 0);
  ifreq ifr{};
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI | IFF_MULTI_QUEUE;
  std::strncpy(ifr.ifr_name, name.c_str(), IFNAMSIZ - 1);
  ASSERT_EQ(::ioctl(foreign, TUNSETIFF, &ifr), 0);
  auto r = TunPort::open(name, 1420, false, true);
  EXPECT_FALSE(r.ok());
  ::close(foreign);
  auto now = TunPort::open(name, 1420, false, true);
  EXPECT_TRUE(now.ok()) << now.error();
  delete_link(name);
}

TEST(TunQueues, QueueCountIsChecked) {
  EXPECT_FALSE(TunPort::open_queues("ftq-count", 1420, true, 0).ok());
  EXPECT_FALSE(TunPort::open_queues("ftq-count", 1420, true, TunPort::kMaxQueues + 1).ok());
}

}  // namespace
}  // namespace faraday::dataplane
