// dpdk_port.h: a NIC (or a DPDK virtual device) that faradayd drives itself:
// the DPDK environment (EAL), one ethdev port with a queue pair per lcore, and
// the step that turns sealed WireGuard datagrams in mbufs into frames on the
// wire. Built only when Debian's libdpdk-dev (22.11) was found
// (FARADAY_HAVE_DPDK); the kernel-socket ports (udp_port.h, tun_port.h) need
// none of it.
//
// Packets stay in their mbufs from rx_burst to tx_burst: packet_of() shows an
// mbuf's data as a Packet (packet.h), so the data path seals and opens in place,
// and the underlay headers go into the mbuf's headroom (RTE_PKTMBUF_HEADROOM,
// 128 bytes, holds the transport header and kUnderlayHeadroom both).
//
// Threads: init_eal once, on the thread that will be the main lcore. A Port is
// opened and closed by one thread; each queue is then used by one thread at a
// time (DPDK's rule: several lcores that take turns on one queue, turns.h, hold
// it in turn to read it, and tx() holds a lock per queue after share_tx), and a
// Transmit or Receive belongs to one thread.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "dataplane/clock.h"
#include "dataplane/counters.h"
#include "dataplane/device.h"
#include "dataplane/packet.h"
#include "dataplane/underlay.h"
#include "dataplane/underlay_link.h"
#include "result.h"

struct rte_mbuf;
struct rte_mempool;

namespace faraday::dataplane::dpdk {

// What the EAL is started with. The defaults need no hugepages and no PCI
// device, so a test or a laptop can run it.
struct EalSettings {
  std::string lcores = "0";  // -l: the CPUs lcores run on ("0", "0-3", "2,4")
  // false: --no-huge (ordinary memory, no reservation); true: hugepages, which
  // must be reserved first (/proc/sys/vm/nr_hugepages), held by this process
  // only (--in-memory).
  bool hugepages = false;
  unsigned memory_mb = 256;  // -m
  // The ports' devices: a PCI address ("0000:3b:00.0") or a virtual device
  // ("net_af_packet0,iface=eth1"); see device_argument.
  std::vector<std::string> devices;
  std::vector<std::string> extra;  // anything else, passed as given
};

// The EAL's command line for `settings` (argv[0] included), or why it is wrong.
Result<std::vector<std::string>> eal_arguments(const EalSettings& settings);
// How many distinct CPUs a list such as "0", "0-3" or "2,4" names (each below
// kMaxCpus, the list at most 256 characters), or why it is not one.
inline constexpr unsigned kMaxCpus = 1024;
Result<unsigned> cpu_list_count(const std::string& list);
// Starts the EAL. Once per process: a second call is an error, as is any
// failure of rte_eal_init (its reason from rte_errno, and the EAL's own lines
// on stderr).
Result<void> init_eal(const EalSettings& settings);

// A device as given in the configuration and what the EAL makes of it:
// "net_ring0" or "net_af_xdp0,iface=eth1" is a virtual device named by the part
// before the first comma; "0000:3b:00.0" a PCI device, by its full lower-case
// address (as DPDK names its port). An error for anything else.
struct DeviceName {
  std::string argument;  // "--vdev=..." or "--allow=..."
  std::string port;      // what rte_eth_dev_get_port_by_name knows it as
};
Result<DeviceName> device_argument(const std::string& device);

struct PortSettings {
  std::string device;   // as in EalSettings::devices
  uint16_t queues = 1;  // RX/TX queue pairs, one per lcore
  uint16_t rx_descriptors = 1024;
  uint16_t tx_descriptors = 1024;
  // mbufs in the port's pool: enough for every descriptor, a burst per queue in
  // flight, and the per-lcore caches.
  uint32_t mbufs = 0;  // 0: computed from the above
};

// One started ethdev port. Opened once per process: closing it (the destructor,
// also after a failed open) releases the device. Hardware checksums are used when the port offers
// them (IPv4 header and UDP, on transmit and on receive); otherwise the frame
// code computes and checks them.
class Port {
 public:
  static Result<std::unique_ptr<Port>> open(const PortSettings& settings);
  ~Port();  // close(), then frees the pool
  // Stops the port and releases the device; its TX ring's mbufs go back to their
  // pools. When mbufs cross between ports (a TUN's packets sent on the NIC),
  // close every port before any is destroyed, so no pool is freed while another
  // port still holds its mbufs.
  void close();
  Port(const Port&) = delete;
  Port& operator=(const Port&) = delete;

  uint16_t id() const { return id_; }
  const std::string& name() const { return name_; }
  const std::string& driver() const { return driver_; }
  MacAddress mac() const { return mac_; }
  uint16_t queues() const { return queues_; }
  rte_mempool* pool() const { return pool_; }
  bool tx_ip_checksum() const { return tx_ip_checksum_; }
  bool tx_udp_checksum() const { return tx_udp_checksum_; }
  RxChecked rx_checked(const rte_mbuf& m) const;

  uint16_t rx(uint16_t queue, rte_mbuf** mbufs, uint16_t n);
  // Sends what the queue takes; the rest is freed and counted (tx_full).
  uint16_t tx(uint16_t queue, rte_mbuf** mbufs, uint16_t n);
  // Several threads may send on one queue from now on: tx() holds the queue's
  // lock (a spin lock; a tx_burst is short). Before those threads start.
  void share_tx();

  // Frames a TX queue had no room for: one queue's (written under its lock
  // when shared), or every queue's.
  uint64_t tx_full(uint16_t queue) const { return tx_full_[queue]; }
  uint64_t tx_full() const { return total(tx_full_); }

 private:
  Port() = default;
  // Descriptors, the mbuf pool and every queue pair, after configure.
  Result<void> set_up_queues(const PortSettings& s);
  uint16_t id_ = 0;
  std::string name_, driver_;
  MacAddress mac_{};
  uint16_t queues_ = 0;
  rte_mempool* pool_ = nullptr;
  bool started_ = false;
  bool tx_ip_checksum_ = false, tx_udp_checksum_ = false;
  bool rx_ip_checksum_ = false, rx_udp_checksum_ = false;
  std::vector<Counter> tx_full_;  // per queue
  struct alignas(64) TxLock {
    std::atomic<bool> held{false};
  };
  std::unique_ptr<TxLock[]> tx_locks_;  // per queue, after share_tx
};

// An mbuf's data as a Packet: the data path works on it in place.
Packet packet_of(rte_mbuf* m);
// After the data path: the mbuf's data is now the packet's payload.
void take_packet(rte_mbuf* m, const Packet& p);

// One lcore's transmit step: the sealed datagrams of a send_burst become frames
// (UnderlayLink::send, headers in the headroom) and go out on the lcore's queue
// (or, send_on, the queue it has the turn on),
// with the ARP requests or solicitations the link asks for. A datagram whose
// next hop is not resolved yet is held (at most kHeld, for at most kHoldFor; when
// full, transport data makes room before handshake messages), as
// a kernel holds packets while it resolves, and retry() sends it once the link
// has learnt the address: a new peer's first handshake is not lost to ARP.
// Every mbuf passed in is sent, held or freed.
class Transmit {
 public:
  static constexpr size_t kHeld = 64;
  static constexpr Nanos kHoldFor = kSecond;

  Transmit(Port& port, uint16_t queue, UnderlayLink& link)
      : port_(port), queue_(queue), link_(link) {}
  ~Transmit();
  Transmit(const Transmit&) = delete;
  Transmit& operator=(const Transmit&) = delete;

  // mbufs[i] holds pkts[i] (packet_of), verdicts[i] is send_burst's verdict.
  // Returns the frames the queue took: datagrams and ARP requests (or
  // solicitations) both.
  size_t send(std::span<rte_mbuf*> mbufs, std::span<Packet> pkts, std::span<const Verdict> verdicts,
              Nanos now) {
    return send_on(queue_, mbufs, pkts, verdicts, now);
  }
  // The same on another queue (one this thread has its turn on, turns.h);
  // what is held still goes out on the Transmit's own queue.
  size_t send_on(uint16_t queue, std::span<rte_mbuf*> mbufs, std::span<Packet> pkts,
                 std::span<const Verdict> verdicts, Nanos now);
  // Copies of the core's own datagrams (its outbox: handshakes, cookies,
  // keepalives), sent as above.
  size_t send_copies(std::span<const Packet> pkts, Nanos now);
  // Sends what is held and now resolves; frees (and counts) what waited longer
  // than kHoldFor. Cheap when nothing is held.
  size_t retry(Nanos now);
  size_t held() const { return held_count_; }

  struct Counters {
    Counter frames;      // datagrams framed and handed to the queue
    Counter no_mbuf;     // a request or copy that found the pool empty
    Counter not_framed;  // no route (the link counts why), short headroom, chained, too big
    Counter held;        // datagrams held for a next hop being resolved
    Counter held_lost;   // held ones freed unsent: too long, or pushed out by newer
  };
  const Counters& counters() const { return counters_; }

 private:
  // Frames one datagram into out[n...] (its request first); holds it if its next
  // hop is unknown (since: when it was first held; returns true), frees it if it
  // cannot go.
  bool frame(rte_mbuf* m, Packet& p, Nanos now, Nanos since, rte_mbuf** out, uint16_t& n);
  void hold(rte_mbuf* m, const Packet& p, Nanos since);

  struct Held {
    rte_mbuf* m;
    Packet p;
    Nanos since;
  };
  Port& port_;
  uint16_t queue_;
  UnderlayLink& link_;
  std::array<Held, kHeld> held_{};
  size_t held_count_ = 0;
  Counters counters_;
};

// One lcore's receive step: frames from its queue go through the link. WireGuard
// datagrams stay in their mbufs, shown as Packets for receive_burst (payload
// and sender); ARP requests and neighbour solicitations for our address are
// answered at once on the same queue; every other frame (learnt, dropped and
// counted by the link, or chained over several mbufs) is freed.
class Receive {
 public:
  Receive(Port& port, uint16_t queue, UnderlayLink& link)
      : port_(port), queue_(queue), link_(link) {}
  // Takes up to mbufs.size() frames (at most kBurstSize) from the queue; the
  // datagrams among them are left in mbufs[0, k) and pkts[0, k), in arrival
  // order. Returns k; those mbufs are the caller's to send on or free.
  size_t poll(std::span<rte_mbuf*> mbufs, std::span<Packet> pkts, Nanos now) {
    return poll(queue_, mbufs, pkts, now);
  }
  // The same from another queue (one this thread holds, turns.h); the
  // answers go out on that queue too.
  size_t poll(uint16_t queue, std::span<rte_mbuf*> mbufs, std::span<Packet> pkts, Nanos now);

  struct Counters {
    Counter frames;     // taken from the queue
    Counter datagrams;  // handed on
    Counter answers;    // ARP replies and neighbour advertisements sent
    Counter chained;    // frames in more than one mbuf (scatter is not asked for)
    Counter no_mbuf;    // an answer that found the pool empty
  };
  const Counters& counters() const { return counters_; }

 private:
  void answer(uint16_t queue, std::span<const uint8_t> frame);

  Port& port_;
  uint16_t queue_;
  UnderlayLink& link_;
  Counters counters_;
};

}  // namespace faraday::dataplane::dpdk
