// dpdk_lcore_test: two WireGuard cores, each with its own dpdk::Lcore, on ports
// made from rings (rte_eth_from_rings): an underlay "wire" (a's TX ring is b's
// RX ring and back) and, per node, an inner port whose RX ring the test fills
// as the kernel would write to a TUN device and whose TX ring it reads. Nothing
// is set up in advance: the first packet resolves b's MAC over the wire, makes
// the handshake and arrives, all through the lcores' poll(). Then the same with
// a's inner port a TAP (an InnerLink): the host's ARP is answered on it, its
// frames lose their Ethernet header on the way in and get one on the way out.
// Then a on two lcores (the second a Device worker on a thread of its own),
// with ARP answers landing on the queue of the lcore that did not ask; one
// tunnel on the second lcore's queues, the first, idle, taking turns on them
// (turns.h), also while a new handshake is made; and a vhost-user
// application that enabled one of a's two queue pairs, getting what the
// second lcore decrypted through the first. Part of dpdk_port_test's program
// (one EAL per process).
#include "dataplane/dpdk_lcore.h"

#include <gtest/gtest.h>
#include <pthread.h>
#include <rte_dev.h>
#include <rte_eth_ring.h>
#include <rte_mbuf.h>
#include <rte_ring.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "dataplane/dpdk_vhost.h"
#include "dataplane/rcu.h"

#include "tests/dataplane/dpdk_helpers.h"
#include "tests/dataplane/harness.h"

namespace faraday::dataplane::dpdk {
namespace {

using testing::Bytes;
using testing::cpus_given;
using testing::make_ring;
using testing::Network;
using testing::ring_port;
using testing::underlay;

// One node's side: its inner port's rings, its ports, link and lcore.
struct Side {
  Side(const std::string& tag, Network& net, testing::Node& node, rte_ring* wire_in,
       rte_ring* wire_out, const MacAddress& mac)
      : to_tunnel(make_ring("in-" + tag)),
        from_tunnel(make_ring("out-" + tag)),
        inner(ring_port("in_" + tag + "0", to_tunnel, from_tunnel)),
        wire(ring_port("wire_" + tag + "0", wire_in, wire_out)),
        link(underlay(mac, node.source)),
        lcore(node.device, net.clock, *inner, *wire, link) {}

  // Puts an inner packet where the inner port reads (the kernel's write to TUN).
  void write(const Bytes& packet) {
    rte_mbuf* m = testing::mbuf_with(inner->pool(), packet);
    ASSERT_NE(m, nullptr);
    ASSERT_EQ(rte_ring_enqueue(to_tunnel, m), 0);
  }
  // What the lcore wrote to the inner port (the kernel's read from TUN).
  std::vector<Bytes> read() { return testing::take_all(from_tunnel); }

  rte_ring* to_tunnel;
  rte_ring* from_tunnel;
  std::unique_ptr<Port> inner, wire;
  UnderlayLink link;
  Lcore lcore;
};

// Two nodes joined by a wire of two rings; `tag` keeps ring and port names apart.
struct Pair {
  explicit Pair(const std::string& tag, uint8_t n)
      : a_to_b(make_ring("wire-" + tag + "ab")),
        b_to_a(make_ring("wire-" + tag + "ba")),
        a(tag + "a", net, net.a, b_to_a, a_to_b, MacAddress{0x02, 0, 0, 0, n, 0x0a}),
        b(tag + "b", net, net.b, a_to_b, b_to_a, MacAddress{0x02, 0, 0, 0, n, 0x0b}) {}
  // Rounds of both lcores, enough for ARP, a handshake and a burst to cross.
  void run() {
    for (int round = 0; round < 16; ++round) {
      a.lcore.poll();
      b.lcore.poll();
    }
  }
  Network net;
  rte_ring* a_to_b;
  rte_ring* b_to_a;
  Side a, b;
};

TEST(DpdkLcore, FirstPacketResolvesShakesHandsAndArrivesThenTrafficFlowsBothWays) {
  Pair pair("", 0);
  Network& net = pair.net;
  Side& a = pair.a;
  Side& b = pair.b;
  // Every mbuf in flight ends where it started: freed by whoever took it last.
  auto free_mbufs = [&] {
    return std::vector<unsigned>{
        rte_mempool_avail_count(a.inner->pool()), rte_mempool_avail_count(a.wire->pool()),
        rte_mempool_avail_count(b.inner->pool()), rte_mempool_avail_count(b.wire->pool())};
  };
  const std::vector<unsigned> free_at_start = free_mbufs();
  auto run = [&] { pair.run(); };

  const Bytes first = testing::ipv4_packet(testing::kTunA4, testing::kTunB4, 200, 1);
  a.write(first);
  run();
  EXPECT_EQ(b.read(), std::vector<Bytes>{first});
  EXPECT_EQ(net.b.counters().handshakes_completed, 1u);
  EXPECT_EQ(a.link.counters().requests, 1u);  // one ARP exchange; b learnt a from it
  EXPECT_EQ(b.link.counters().requests, 0u);
  EXPECT_EQ(a.lcore.transmit().counters().held, 1u);  // the initiation, until b answered

  // A burst each way, in order, every size from tiny to the MTU.
  std::vector<Bytes> ab, ba;
  for (uint8_t i = 0; i < 40; ++i) {
    ab.push_back(testing::ipv4_packet(testing::kTunA4, testing::kTunB4, 20 + i * 35, i));
    ba.push_back(testing::ipv4_packet(testing::kTunB4, testing::kTunA4, 1420 - i * 30, i));
  }
  for (const Bytes& p : ab) a.write(p);
  for (const Bytes& p : ba) b.write(p);
  run();
  EXPECT_EQ(b.read(), ab);
  EXPECT_EQ(a.read(), ba);
  EXPECT_EQ(net.a.counters().dropped_total(), 0u);
  EXPECT_EQ(net.b.counters().dropped_total(), 0u);
  EXPECT_EQ(a.lcore.counters().inner_rx, 1u + ab.size());
  EXPECT_EQ(a.lcore.counters().inner_tx, ba.size());

  // A packet for nobody's allowed IPs is dropped by the core, its mbuf freed.
  a.write(testing::ipv4_packet(testing::kTunA4, "192.168.9.9", 100));
  run();
  EXPECT_EQ(net.a.dropped(Drop::kNoRoute), 1u);
  EXPECT_EQ(a.lcore.transmit().held(), 0u);
  EXPECT_EQ(free_mbufs(), free_at_start);
}

TEST(DpdkLcore, OnATapTheHostsArpIsAnsweredAndPacketsCrossInFrames) {
  Pair pair("t", 1);
  Network& net = pair.net;
  Side& a = pair.a;
  Side& b = pair.b;
  const MacAddress ours = *parse_mac("02:fa:00:00:00:01");
  const MacAddress host = *parse_mac("02:11:00:00:00:01");
  InnerLink tap(ours, host);
  a.lcore.set_inner_link(&tap);
  const unsigned a_inner_free = rte_mempool_avail_count(a.inner->pool());
  auto run = [&] { pair.run(); };

  // The host asks for b's overlay address: the answer comes back on the TAP.
  UnderlayAddress asker;
  asker.mac = host;
  asker.v4 = UnderlayAddress::V4{{192, 168, 0, 1}, 24, std::nullopt};
  Bytes arp(128);
  arp.resize(build_arp_request(arp, asker, {192, 168, 0, 2}));
  a.write(arp);
  run();
  std::vector<Bytes> answers = a.read();
  ASSERT_EQ(answers.size(), 1u);
  Result<Frame, FrameDrop> reply = classify_frame(answers[0], asker);
  ASSERT_TRUE(reply) << frame_drop_name(reply.failure());
  EXPECT_EQ(reply->kind, Frame::Kind::kArpReply);
  EXPECT_EQ(reply->neighbor_mac, ours);
  EXPECT_EQ(tap.counters().answers, 1u);

  // Packets in frames to our MAC reach b as bare IP packets; b's come back to
  // the host in frames; frames to another MAC go nowhere.
  const Bytes ab = testing::ipv4_packet(testing::kTunA4, testing::kTunB4, 300, 1);
  const Bytes ba = testing::ipv4_packet(testing::kTunB4, testing::kTunA4, 1420, 2);
  a.write(testing::ethernet_frame(ours, host, kEtherIpv4, ab));
  a.write(testing::ethernet_frame(host, host, kEtherIpv4, ab));
  run();
  EXPECT_EQ(b.read(), std::vector<Bytes>{ab});
  b.write(ba);
  run();
  EXPECT_EQ(a.read(), std::vector<Bytes>{testing::ethernet_frame(host, ours, kEtherIpv4, ba)});
  EXPECT_EQ(tap.counters().packets, 1u);
  EXPECT_EQ(tap.counters().dropped(FrameDrop::kNotForUs), 1u);
  EXPECT_EQ(a.lcore.counters().inner_answers_lost, 0u);
  EXPECT_EQ(net.a.counters().dropped_total(), 0u);
  EXPECT_EQ(rte_mempool_avail_count(a.inner->pool()), a_inner_free);
}

// Node a on two lcores over two-queue ring ports (the second lcore a Device
// worker on a thread of its own), b on one; `tag` keeps ring and port names
// apart. What comes back from b lands on a's queue 1, but for every other ARP
// answer (answer_on_0): on queue 0, the lcore that did not ask. `inner`, when
// given, is a's inner port (two queue pairs) instead of rings.
struct TwoLcores {
  TwoLcores(const std::string& tag, uint8_t n, std::unique_ptr<crypto::AeadBackend> worker_aead,
            Port* inner = nullptr)
      : a_mac{0x02, 0, 0, 0, n, 0x0a},
        b_mac{0x02, 0, 0, 0, n, 0x0b},
        link0(underlay(a_mac, net.a.source)),
        link1(underlay(a_mac, net.a.source)),
        b_link(underlay(b_mac, net.b.source)),
        aead(std::move(worker_aead)),
        worker(net.a.device.add_worker(*aead)) {
    for (int q = 0; q < 2; ++q) {
      const std::string i = std::to_string(q);
      in[q] = make_ring(tag + "in" + i);
      out[q] = make_ring(tag + "out" + i);
      to_a[q] = make_ring(tag + "ba" + i);
    }
    // Both of a's lcores send on the wire: a ring with two producers.
    a_to_b = rte_ring_create((tag + "ab").c_str(), 1024, SOCKET_ID_ANY, 0);
    EXPECT_NE(a_to_b, nullptr);
    from_b = make_ring(tag + "bout");
    rte_ring* wire_tx[2] = {a_to_b, a_to_b};
    if (!inner) {
      a_inner = two_queues(tag + "ai0", in, out);
      inner = a_inner.get();
    }
    a_wire = two_queues(tag + "aw0", to_a, wire_tx);
    b_in = make_ring(tag + "bin");
    b_out = make_ring(tag + "bto");
    b_inner = ring_port(tag + "bi0", b_in, b_out);
    b_wire = ring_port(tag + "bw0", a_to_b, from_b);
    first = std::make_unique<Lcore>(net.a.device, net.clock, *inner, *a_wire, link0, 0);
    second = std::make_unique<Lcore>(net.a.device, net.clock, *inner, *a_wire, link1, 1, &worker);
    b = std::make_unique<Lcore>(net.b.device, net.clock, *b_inner, *b_wire, b_link);
    first->set_news(&board, 0);
    second->set_news(&board, 1);
    first->serve_workers();
  }
  ~TwoLcores() {
    stop_threads();
    for (Port* port : {a_inner.get(), a_wire.get(), b_inner.get(), b_wire.get()})
      if (port) port->close();
  }
  static std::unique_ptr<Port> two_queues(const std::string& name, rte_ring** rx, rte_ring** tx) {
    EXPECT_GE(rte_eth_from_rings(name.c_str(), rx, 2, tx, 2, SOCKET_ID_ANY), 0) << name;
    Result<std::unique_ptr<Port>> port = Port::open({.device = "net_ring_" + name, .queues = 2});
    EXPECT_TRUE(port) << port.error();
    return port ? std::move(*port) : nullptr;
  }
  // Lcore 1 (and with both, lcore 0) polls on a thread of its own until
  // stop_threads(). With both, the threads may run on every CPU the program
  // was given (cpus_given).
  void start_threads(bool both = false) {
    // An lcore with nothing to do yields, so the thread that plays b gets
    // its turn on a loaded 2-CPU machine (a CI run compiles meanwhile).
    lcore1 = std::thread([this, both] {
      if (both) run_anywhere();
      RcuReader rcu;
      second->set_rcu(&rcu);
      while (!stop.load()) {
        if (second->poll() == 0) std::this_thread::yield();
        rcu.quiescent();
      }
    });
    if (both)
      lcore0 = std::thread([this] {
        run_anywhere();
        while (!stop.load()) {
          if (first->poll() == 0) std::this_thread::yield();
          ++first_polls;
        }
      });
  }
  static void run_anywhere() {
    EXPECT_EQ(pthread_setaffinity_np(pthread_self(), sizeof(cpu_set_t), &cpus_given()), 0);
  }
  void stop_threads() {
    stop = true;
    for (std::thread* t : {&lcore0, &lcore1})
      if (t->joinable()) t->join();
  }
  // What b sent, in one go per queue, as a NIC's RX ring fills.
  void carry_b_to_a() {
    void* m[1024];
    const unsigned n = rte_ring_dequeue_burst(from_b, m, 1024, nullptr);
    std::vector<void*> queued[2];
    for (unsigned i = 0; i < n; ++i) {
      const uint8_t* d = rte_pktmbuf_mtod(static_cast<rte_mbuf*>(m[i]), const uint8_t*);
      const bool arp = (d[12] << 8 | d[13]) == kEtherArp;
      queued[arp && answer_on_0 && arp_answers++ % 2 == 1 ? 0 : 1].push_back(m[i]);
    }
    for (int q = 0; q < 2; ++q)
      ASSERT_EQ(rte_ring_enqueue_bulk(to_a[q], queued[q].data(), queued[q].size(), nullptr),
                queued[q].size());
  }
  // Polls b (and lcore 0 unless it has a thread) until `done` or `limit`,
  // collecting what each side's tunnel delivered.
  template <typename Done>
  void run_until(Done done, std::chrono::milliseconds limit = std::chrono::seconds(20)) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!done() && std::chrono::steady_clock::now() < deadline) {
      if (!lcore0.joinable()) first->poll();
      b->poll();
      carry_b_to_a();
      for (Bytes& p : testing::take_all(b_out)) at_b.push_back(std::move(p));
      for (Bytes& p : testing::take_all(out[1])) at_a.push_back(std::move(p));
      std::this_thread::yield();
    }
  }
  // Packets where an inner port reads, in one go (a queue's poller takes
  // them as one burst).
  static void write(rte_ring* ring, rte_mempool* pool, const std::vector<Bytes>& packets) {
    std::vector<void*> mbufs;
    for (const Bytes& packet : packets) {
      mbufs.push_back(testing::mbuf_with(pool, packet));
      ASSERT_NE(mbufs.back(), nullptr);
    }
    ASSERT_EQ(rte_ring_enqueue_bulk(ring, mbufs.data(), mbufs.size(), nullptr), mbufs.size());
  }

  Network net;
  MacAddress a_mac, b_mac;
  rte_ring *in[2] = {}, *out[2] = {}, *to_a[2] = {};
  rte_ring *a_to_b = nullptr, *from_b = nullptr, *b_in = nullptr, *b_out = nullptr;
  std::unique_ptr<Port> a_inner, a_wire, b_inner, b_wire;
  UnderlayLink link0, link1, b_link;
  std::unique_ptr<crypto::AeadBackend> aead;
  Worker& worker;
  NewsBoard board{2};
  std::unique_ptr<Lcore> first, second, b;
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> first_polls{0};  // rounds lcore 0's thread finished
  std::thread lcore0, lcore1;
  bool answer_on_0 = true;
  unsigned arp_answers = 0;
  std::vector<Bytes> at_b, at_a;
};

// a runs two lcores, a queue pair each on its inner port and its wire; the
// second is one of the Device's workers, polled on a thread of its own (with
// an RcuReader) while the test thread polls the first lcore and b. The test
// carries b's frames to a: datagrams to queue 1, ARP answers to each queue in
// turn starting with 1, so each lcore's answer lands on the other's queue and
// arrives as news (NewsBoard). The tunnel's packets all go through lcore 1.
TEST(DpdkLcore, TwoLcoresShareOneDeviceAndEachHearsTheOthersArpAnswers) {
  TwoLcores t("two", 2, crypto::make_sodium_backend());
  ASSERT_TRUE(t.a_inner && t.a_wire);
  t.start_threads();

  // The first packet, on lcore 1: staged with the handshake context, whose
  // initiation waits for b's MAC, whose answer lands on lcore 1's queue.
  const Bytes hello = testing::ipv4_packet(testing::kTunA4, testing::kTunB4, 200, 1);
  t.write(t.in[1], t.a_inner->pool(), {hello});
  t.run_until([&] { return !t.at_b.empty(); });
  EXPECT_EQ(t.at_b, std::vector<Bytes>{hello});
  EXPECT_EQ(t.net.b.counters().handshakes_completed, 1u);
  EXPECT_EQ(t.link0.counters().requests, 1u);
  EXPECT_EQ(t.link0.counters().heard, 1u);  // the answer to its request came on queue 1

  // A burst each way through lcore 1. It knows b's MAC if lcore 0's news of
  // its request came before the answer (then lcore 1 took the answer itself);
  // otherwise it asks itself, and hears the answer, which lands on queue 0.
  std::vector<Bytes> ab, ba;
  for (uint8_t i = 0; i < 40; ++i) {
    ab.push_back(testing::ipv4_packet(testing::kTunA4, testing::kTunB4, 20 + i * 35, i));
    ba.push_back(testing::ipv4_packet(testing::kTunB4, testing::kTunA4, 1420 - i * 30, i));
  }
  t.at_b.clear();
  t.write(t.in[1], t.a_inner->pool(), ab);
  t.write(t.b_in, t.b_inner->pool(), ba);
  t.run_until([&] { return t.at_b.size() >= ab.size() && t.at_a.size() >= ba.size(); });
  t.stop_threads();
  EXPECT_EQ(t.at_b, ab);
  EXPECT_EQ(t.at_a, ba);
  const UnderlayLink::Counters& l1 = t.link1.counters();
  EXPECT_TRUE((l1.learnt == 1 && l1.requests == 0) || (l1.requests == 1 && l1.heard == 1))
      << "lcore 1: learnt " << l1.learnt << ", requests " << l1.requests << ", heard " << l1.heard;
  EXPECT_EQ(t.second->counters().inner_rx, 1u + ab.size());
  EXPECT_EQ(t.second->counters().inner_tx, ba.size());
  EXPECT_EQ(t.first->counters().inner_rx, 0u);
  EXPECT_EQ(t.board.lost(), 0u);
  EXPECT_EQ(t.net.a.counters().dropped_total(), 0u);
  EXPECT_EQ(t.net.b.counters().dropped_total(), 0u);
}

// One tunnel, all its traffic on lcore 1's queues (as RSS keeps one peer's
// datagrams on one queue): lcore 0, idle, takes turns on lcore 1's queues
// both ways (turns.h), and every packet still arrives whole and in order.
TEST(DpdkLcore, AnIdleLcoreTakesTurnsOnABusyOnesQueuesAndThePacketsStayInOrder) {
  if (CPU_COUNT(&cpus_given()) < 2) GTEST_SKIP() << "one CPU: two lcores cannot work at once";
  // Declared first: they outlive the lcores' threads, which t stops however
  // the test ends.
  std::array<QueueTurns, 2> turns;
  TwoLcores t("tun", 3, crypto::make_sodium_backend());
  ASSERT_TRUE(t.a_inner && t.a_wire);
  t.a_inner->share_tx();
  t.a_wire->share_tx();
  t.first->set_turns(turns);
  t.second->set_turns(turns);
  t.answer_on_0 = false;
  // Both of a's lcores on threads of their own, as in faradayd: lcore 0 is
  // idle while lcore 1 works.
  t.start_threads(true);
  const Bytes hello = testing::ipv4_packet(testing::kTunA4, testing::kTunB4, 200, 1);
  t.write(t.in[1], t.a_inner->pool(), {hello});
  t.run_until([&] { return !t.at_b.empty(); });
  ASSERT_EQ(t.at_b, std::vector<Bytes>{hello});
  t.at_b.clear();
  // Both lcores know b's MAC before the bursts: a datagram held for ARP goes
  // out later on its lcore's own queue, after newer ones. Lcore 1 learnt it
  // unless b's answer came before lcore 0's news of its request; then single
  // packets on its queue make it ask (or lcore 0 sends them, on a turn).
  auto knows_b = [](const UnderlayLink& link) {
    return link.counters().learnt + link.counters().heard > 0;
  };
  uint16_t id = 1000;
  for (int nudge = 0; nudge < 20 && !(knows_b(t.link0) && knows_b(t.link1)); ++nudge) {
    t.write(t.in[1], t.a_inner->pool(),
            {testing::ipv4_packet(testing::kTunA4, testing::kTunB4, 200, id++)});
    t.run_until([&] { return !t.at_b.empty(); });
    ASSERT_EQ(t.at_b.size(), 1u);
    t.at_b.clear();
  }
  ASSERT_TRUE(knows_b(t.link0) && knows_b(t.link1));

  // Bursts of 48 full-size packets each way, several at a time so a queue
  // holds more than one burst, until lcore 0 has taken turns both ways (20 s
  // at most: lcore 0 needs a CPU while lcore 1 is at work).
  std::vector<Bytes> ab, ba;
  id = 0;
  // 48 full-size packets onto a's inner queue 1 (to b) or b's inner port (to
  // a), and into what the other end must get.
  auto burst = [&](bool to_b) {
    std::vector<Bytes> packets;
    for (int i = 0; i < 48; ++i, ++id)
      packets.push_back(to_b ? testing::ipv4_packet(testing::kTunA4, testing::kTunB4, 1400, id)
                             : testing::ipv4_packet(testing::kTunB4, testing::kTunA4, 1400, id));
    if (to_b)
      t.write(t.in[1], t.a_inner->pool(), packets);
    else
      t.write(t.b_in, t.b_inner->pool(), packets);
    std::vector<Bytes>& expected = to_b ? ab : ba;
    expected.insert(expected.end(), packets.begin(), packets.end());
  };
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  do {
    for (int i = 0; i < 4; ++i) {
      burst(true);
      burst(false);
    }
    t.run_until([&] { return t.at_b.size() >= ab.size() && t.at_a.size() >= ba.size(); });
    ASSERT_EQ(t.at_b.size(), ab.size());
    ASSERT_EQ(t.at_a.size(), ba.size());
  } while ((t.first->counters().inner_rx == 0 || t.first->receive().counters().datagrams == 0) &&
           std::chrono::steady_clock::now() < deadline);

  // A new handshake while the lcores take turns: b forgets a, so its next
  // packets wait for a session it makes anew. a's handshake context (lcore 0)
  // confirms that session when b's first data arrives, on a turn of its own
  // perhaps, with lcore 1 waiting for that turn: the grace period it then
  // waits for must not wait for lcore 1 (Lcore::set_rcu). Twice 48 packets,
  // fewer than b holds while it has no session.
  const uint64_t handshakes = t.net.a.counters().handshakes_completed;
  t.net.b.device.remove_peer(t.net.a.public_key);
  t.net.connect(t.net.b, t.net.a, testing::kTunA4, testing::kTunA6);
  t.net.b.device.commit();
  burst(false);
  burst(false);
  t.run_until([&] {
    return t.at_a.size() >= ba.size() && t.net.a.counters().handshakes_completed > handshakes;
  });
  ASSERT_EQ(t.at_a.size(), ba.size()) << "a stopped taking b's packets after the new handshake";
  ASSERT_GT(t.net.a.counters().handshakes_completed, handshakes);
  // Confirmed; a sends on the new session once lcore 0 published it (the end
  // of the round that confirmed it, or of the next, which serves lcore 1's note).
  const uint64_t polls = t.first_polls.load();
  t.run_until([&] { return t.first_polls.load() >= polls + 2; });
  // And both ways on the new session.
  burst(true);
  burst(false);
  t.run_until([&] { return t.at_b.size() >= ab.size() && t.at_a.size() >= ba.size(); });
  t.stop_threads();
  EXPECT_GT(t.first->counters().inner_rx, 0u) << "lcore 0 never sealed lcore 1's packets";
  EXPECT_GT(t.first->receive().counters().datagrams, 0u)
      << "lcore 0 never opened lcore 1's datagrams";
  EXPECT_GT(t.first->counters().turns_taken, 1u);
  EXPECT_EQ(t.second->counters().turns_taken, 0u);  // lcore 0's queues stayed empty
  EXPECT_TRUE(t.at_b == ab) << "a packet from a to b changed or moved";
  EXPECT_TRUE(t.at_a == ba) << "a packet from b to a changed or moved";
  EXPECT_EQ(t.net.a.counters().dropped_total(), 0u);
  EXPECT_EQ(t.net.b.counters().dropped_total(), 0u);
}

// Which lcore takes another's packets for a vhost-user application: one whose
// pair the application receives on, spread over those as the queue goes up.
TEST(DpdkLcore, AQueueTheApplicationDoesNotReceiveOnHandsToOneItDoes) {
  EXPECT_EQ(VhostQueues::pick(0b1, 1), 0);
  EXPECT_EQ(VhostQueues::pick(0b1, 63), 0);
  EXPECT_EQ(VhostQueues::pick(0b1010, 0), 1);
  EXPECT_EQ(VhostQueues::pick(0b1010, 1), 3);
  EXPECT_EQ(VhostQueues::pick(0b1010, 2), 1);
  EXPECT_EQ(VhostQueues::pick(uint64_t{1} << 63, 5), 63);
  EXPECT_EQ(VhostQueues::pick(~uint64_t{0}, 40), 40);
}

// a's inner side a vhost-user socket with a queue pair per lcore, and an
// application (virtio-user, in this process) that enables one pair: what b
// sends lands on lcore 1's queue, whose pair the application does not
// receive on, so lcore 1 hands the decrypted packets to lcore 0, which sends
// them on pair 0, all of them and in order.
TEST(DpdkLcore, AVhostUserApplicationOnFewerQueuePairsGetsEveryLcoresPackets) {
  const testing::SocketPath socket("vhost-lcores");
  const std::string& path = socket.path;
  ASSERT_EQ(rte_dev_probe(("net_vhost5,iface=" + path + ",queues=2").c_str()), 0);
  Result<std::unique_ptr<Port>> vhost = Port::open({.device = "net_vhost5", .queues = 2});
  ASSERT_TRUE(vhost) << vhost.error();
  Result<std::unique_ptr<VhostQueues>> queues = VhostQueues::watch((*vhost)->id(), 2);
  ASSERT_TRUE(queues) << queues.error();
  ASSERT_EQ(rte_dev_probe(("net_virtio_user5,path=" + path + ",queues=1").c_str()), 0);
  Result<std::unique_ptr<Port>> app = Port::open({.device = "net_virtio_user5"});
  ASSERT_TRUE(app) << app.error();
  // The application's queue events come on lib/vhost's thread.
  const auto attached = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while ((*queues)->receiving() != 1 && std::chrono::steady_clock::now() < attached)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  ASSERT_EQ((*queues)->receiving(), 1u) << "the application's one queue pair never came up";

  TwoLcores t("vhl", 5, crypto::make_sodium_backend(), vhost->get());
  ASSERT_TRUE(t.a_wire);
  const MacAddress ours = *parse_mac("02:fa:00:00:00:05");
  InnerLink inner0(ours, MacAddress{}), inner1(ours, MacAddress{});
  t.first->set_inner_link(&inner0);
  t.second->set_inner_link(&inner1);
  t.first->set_vhost_queues(queues->get());
  t.second->set_vhost_queues(queues->get());
  t.answer_on_0 = false;
  // However the test ends, the lcores' threads stop first, then the rings
  // give their mbufs back while the pools are there.
  struct StopFirst {
    TwoLcores& t;
    Result<std::unique_ptr<VhostQueues>>& queues;
    ~StopFirst() {
      t.stop_threads();
      queues->reset();
    }
  } stop_first{t, queues};
  t.start_threads(true);

  // The application's first packet (pair 0, lcore 0) makes the session; its
  // driver may still be setting its rings up, so it is sent until b has it.
  testing::VirtioApp application{**app};
  const MacAddress app_mac = (*app)->mac();
  const Bytes hello = testing::ipv4_packet(testing::kTunA4, testing::kTunB4, 200, 1);
  const Bytes hello_frame = testing::ethernet_frame(ours, app_mac, kEtherIpv4, hello);
  for (int i = 0; i < 50 && t.at_b.empty(); ++i) {
    application.send(hello_frame);
    t.run_until([&] { return !t.at_b.empty(); }, std::chrono::milliseconds(100));
  }
  ASSERT_FALSE(t.at_b.empty()) << "the application's packet never reached b";
  EXPECT_EQ(t.at_b[0], hello);

  std::vector<Bytes> ba, frames, at_app;
  for (int i = 0; i < 48; ++i) {
    ba.push_back(testing::ipv4_packet(testing::kTunB4, testing::kTunA4, 100 + 27 * i, i));
    frames.push_back(testing::ethernet_frame(app_mac, ours, kEtherIpv4, ba.back()));
  }
  t.write(t.b_in, t.b_inner->pool(), ba);
  t.run_until([&] {
    for (Bytes& frame : application.receive()) at_app.push_back(std::move(frame));
    return at_app.size() >= ba.size();
  });
  t.stop_threads();
  EXPECT_TRUE(at_app == frames) << at_app.size() << " of " << frames.size()
                                << " packets, or some changed or moved";
  EXPECT_EQ(t.second->counters().inner_handed, ba.size());
  EXPECT_EQ(t.second->counters().inner_handed_lost, 0u);
  EXPECT_EQ(t.second->counters().inner_tx, 0u);
  EXPECT_EQ(t.first->counters().inner_tx, ba.size());
  EXPECT_EQ(t.net.a.counters().dropped_total(), 0u);
  EXPECT_EQ((*vhost)->tx_full(), 0u);

  // The application leaves: net_vhost forgets its pairs with the link down.
  (*app)->close();
  const auto left = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while ((*queues)->receiving() != 0 && std::chrono::steady_clock::now() < left)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  EXPECT_EQ((*queues)->receiving(), 0u) << "the application left, its pair still counted";
  queues->reset();  // its callbacks go while the port is there
  (*vhost)->close();
}

}  // namespace
}  // namespace faraday::dataplane::dpdk
