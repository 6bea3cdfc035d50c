// dpdk_memif_gen: the traffic source and sink of bench/dpdk_memif.sh, a DPDK
// application as storage software would be one. It attaches with virtio-user to
// two faradayd's vhost-user sockets (--dpdk-inner vhost): it asks faradayd A for
// the address of B's side (ARP, answered by A), sends single packets until one
// comes out of B (the handshake is done), then sends IPv4/UDP packets of SIZE
// bytes into A, at most kWindow in flight, for SECONDS, and counts what comes
// out of B. The packets cross A's WireGuard data path, the underlay between the
// two daemons, and B's.
//
//   dpdk_memif_gen SOCKET_A SOCKET_B SIZE SECONDS LCORE
//
// Prints one line: "size=SIZE sent=N received=N late=N seconds=S mpps=X gbit=Y",
// the rates counting received inner bytes (the IP packets, no Ethernet);
// received + late = sent unless packets were lost.
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <sched.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "dataplane/dpdk_port.h"
#include "dataplane/inet.h"
#include "dataplane/underlay.h"

namespace {

using namespace faraday;
using namespace faraday::dataplane;
using Steady = std::chrono::steady_clock;

constexpr std::array<uint8_t, 4> kSourceIp = {192, 168, 77, 1};  // A's side
constexpr std::array<uint8_t, 4> kDestIp = {192, 168, 77, 2};    // B's side
constexpr uint16_t kBurst = 32;
// The virtio rings' size (virtio-user's queue_size; its default is 256).
constexpr uint16_t kRing = 1024;
// In flight at most: no more than the generator's virtio receive ring holds,
// less a burst of buffers the driver may not have posted back yet, so B never
// finds it full and nothing is lost on the way. With a window of 256 (the
// default ring) the window, not the daemons, set the pace: a daemon back from
// an idle sleep found the generator yielding with its window spent, and the
// pair made 7.7-7.9 Gbit/s at 1420 B, where 1024 rings give 9.1-10.6 a round
// (2026-12-05).
constexpr uint64_t kWindow = kRing - kBurst;

[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "dpdk_memif_gen: %s\n", what.c_str());
  std::exit(1);
}

std::unique_ptr<dpdk::Port> attach(const std::string& name) {
  Result<std::unique_ptr<dpdk::Port>> port = dpdk::Port::open({.device = name});
  if (!port) fail(port.error());
  return std::move(*port);
}

void send_frame(dpdk::Port& port, const uint8_t* frame, size_t length) {
  rte_mbuf* m = rte_pktmbuf_alloc(port.pool());
  if (!m) fail("mbuf pool empty");
  std::memcpy(rte_pktmbuf_mtod(m, uint8_t*), frame, length);
  m->data_len = static_cast<uint16_t>(length);
  m->pkt_len = static_cast<uint32_t>(length);
  port.tx(0, &m, 1);
}

// Asks through `port` who has kDestIp until faradayd answers (the vhost-user
// rings come up once both sides have negotiated); its MAC address.
MacAddress resolve(dpdk::Port& port) {
  UnderlayAddress self;
  self.mac = port.mac();
  self.v4 = UnderlayAddress::V4{kSourceIp, 24, std::nullopt};
  std::array<uint8_t, 128> request{};
  const size_t length = build_arp_request(request, self, kDestIp);
  const Steady::time_point give_up = Steady::now() + std::chrono::seconds(10);
  while (Steady::now() < give_up) {
    send_frame(port, request.data(), length);
    const Steady::time_point wait = Steady::now() + std::chrono::milliseconds(100);
    while (Steady::now() < wait) {
      rte_mbuf* m[kBurst];
      const uint16_t n = port.rx(0, m, kBurst);
      for (uint16_t i = 0; i < n; ++i) {
        Result<Frame, FrameDrop> f =
            classify_frame({rte_pktmbuf_mtod(m[i], const uint8_t*), m[i]->data_len}, self);
        rte_pktmbuf_free(m[i]);
        if (f && f->kind == Frame::Kind::kArpReply) return f->neighbor_mac;
      }
    }
  }
  fail("no ARP answer from faradayd A in 10 s");
}

// An Ethernet frame to `to` with an IPv4/UDP packet of `size` bytes.
std::vector<uint8_t> packet_frame(const MacAddress& to, const MacAddress& from, size_t size) {
  std::vector<uint8_t> f(kEthernetHeader + size, 0x5a);
  std::memcpy(f.data(), to.data(), 6);
  std::memcpy(f.data() + 6, from.data(), 6);
  inet::store_be16(f.data() + 12, kEtherIpv4);
  uint8_t* ip = f.data() + kEthernetHeader;
  ip[0] = 0x45;
  ip[1] = 0;
  inet::store_be16(ip + 2, static_cast<uint16_t>(size));
  inet::store_be16(ip + 4, 0);
  inet::store_be16(ip + 6, 0x4000);
  ip[8] = 64;
  ip[9] = 17;
  inet::store_be16(ip + 10, 0);
  std::memcpy(ip + 12, kSourceIp.data(), 4);
  std::memcpy(ip + 16, kDestIp.data(), 4);
  inet::store_checksum(ip + 10, inet::sum(ip, 20));
  inet::store_be16(ip + 20, 9000);
  inet::store_be16(ip + 22, 9001);
  inet::store_be16(ip + 24, static_cast<uint16_t>(size - 20));
  inet::store_be16(ip + 26, 0);  // no UDP checksum (IPv4 allows it)
  return f;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 6) fail("usage: dpdk_memif_gen SOCKET_A SOCKET_B SIZE SECONDS LCORE");
  const size_t size = std::strtoul(argv[3], nullptr, 10);
  const double seconds = std::strtod(argv[4], nullptr);
  if (size < 28 || size > 1420 || seconds <= 0) fail("SIZE 28..1420, SECONDS > 0");
  dpdk::EalSettings eal;
  eal.lcores = argv[5];
  const std::string options = ",queues=1,queue_size=" + std::to_string(kRing) + ",path=";
  eal.devices = {"net_virtio_user0" + options + argv[1], "net_virtio_user1" + options + argv[2]};
  if (Result<void> started = dpdk::init_eal(eal); !started) fail(started.error());
  std::unique_ptr<dpdk::Port> a = attach("net_virtio_user0");
  std::unique_ptr<dpdk::Port> b = attach("net_virtio_user1");
  const MacAddress to = resolve(*a);
  const std::vector<uint8_t> frame = packet_frame(to, a->mac(), size);

  uint64_t sent = 0, received = 0;
  rte_mbuf* out[kBurst];
  rte_mbuf* in[kBurst];
  // Warm-up: one packet at a time until B delivers one, so the handshake is
  // done and none is dropped while it is made (a peer stages only a few).
  const Steady::time_point warm_until = Steady::now() + std::chrono::seconds(10);
  while (received == 0) {
    if (Steady::now() > warm_until) fail("nothing came out of B in 10 s");
    send_frame(*a, frame.data(), frame.size());
    const Steady::time_point wait = Steady::now() + std::chrono::milliseconds(20);
    while (received == 0 && Steady::now() < wait) {
      const uint16_t n = b->rx(0, in, kBurst);
      received += n;
      rte_pktmbuf_free_bulk(in, n);
    }
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  rte_pktmbuf_free_bulk(in, b->rx(0, in, kBurst));
  received = 0;
  auto drain = [&] {
    const uint16_t n = b->rx(0, in, kBurst);
    for (uint16_t i = 0; i < n; ++i)
      if (in[i]->pkt_len == kEthernetHeader + size) ++received;
    rte_pktmbuf_free_bulk(in, n);
    rte_pktmbuf_free_bulk(out, a->rx(0, out, kBurst));  // nothing is expected back on A
    return n;
  };
  const Steady::time_point start = Steady::now();
  const Steady::time_point end =
      start + std::chrono::duration_cast<Steady::duration>(std::chrono::duration<double>(seconds));
  while (Steady::now() < end) {
    // At most kWindow packets in flight: what the rings between here and B
    // hold, so nothing is dropped for want of room and the daemons, not the
    // generator's overruns, set the pace.
    const bool room = sent - received + kBurst <= kWindow;
    if (room && rte_pktmbuf_alloc_bulk(a->pool(), out, kBurst) == 0) {
      for (rte_mbuf* m : out) {
        std::memcpy(rte_pktmbuf_mtod(m, uint8_t*), frame.data(), frame.size());
        m->data_len = static_cast<uint16_t>(frame.size());
        m->pkt_len = static_cast<uint32_t>(frame.size());
      }
      sent += a->tx(0, out, kBurst);  // what A's ring had no room for is freed
    }
    // Sharing a CPU with a daemon's lcore (2 vCPUs, three pollers): with the
    // window full and nothing back, let it run rather than spin.
    if (drain() == 0 && !room) sched_yield();
  }
  const double elapsed = std::chrono::duration<double>(Steady::now() - start).count();
  // What was still in flight arrives within a few milliseconds; not counted as
  // rate, but the loss figure should not count it as lost.
  const Steady::time_point settle = Steady::now() + std::chrono::milliseconds(50);
  const uint64_t in_time = received;
  while (Steady::now() < settle) drain();
  std::printf("size=%zu sent=%llu received=%llu late=%llu seconds=%.3f mpps=%.3f gbit=%.3f\n", size,
              static_cast<unsigned long long>(sent), static_cast<unsigned long long>(in_time),
              static_cast<unsigned long long>(received - in_time), elapsed,
              static_cast<double>(in_time) / elapsed / 1e6,
              static_cast<double>(in_time) * static_cast<double>(size) * 8 / elapsed / 1e9);
  a->close();
  b->close();
  return 0;
}
