// dpdk_lcore.h: one lcore's data path between two DPDK ports: the inner port,
// whose frames are the tunnel's IP packets (net_tun, DPDK's TUN mode, or rings
// in tests), and the underlay port faradayd owns (dpdk_port.h, through an
// UnderlayLink). Packets stay in their mbufs the whole way. One poll() is a
// round of:
//
//   inner RX -> send_burst in the mbufs -> Transmit (framed; held while ARP resolves)
//   underlay RX -> Receive (ARP/ND answered) -> receive_burst in the mbufs -> inner TX
//   the core's own messages (its outbox: handshakes, cookies, keepalives) -> Transmit
//   due timers (Device::tick); datagrams held for a next hop retried when a
//   frame came in and every kRetryEvery; neighbours unheard of for long
//   forgotten (once a second)
//   nothing came on this lcore's queues: a turn on the others' (set_turns)
//
// With an InnerLink (set_inner_link), the inner port is a TAP (or a vhost-user
// socket): frames from the host are classified there (ARP and NS answered on
// the inner port, IP packets handed on without their Ethernet header), and
// packets to the host get one.
//
// Several lcores share a Device and its ports, a queue pair each, as the kernel
// path's workers do (pipeline.h). The first lcore (no Worker) is the Device's
// handshake context: it also runs the timers, service() (what the others hand
// over: handshake messages, packets waiting for a session) and the outbox. The
// others run the Device's data path with a Worker of their own and an
// RcuReader (rcu.h) on their thread. Each lcore has its own UnderlayLink (and
// InnerLink): the neighbour frames one hears reach the others' through a
// NewsBoard, whichever queue the port put them on.
//
// One tunnel over several lcores: the port keeps one peer's datagrams (and
// the inner port one flow's packets) on one queue. With set_turns, a round
// that found nothing on the lcore's own queues takes a turn on the others'
// (turns.h): it reads a burst of another lcore's queue, seals or opens it
// with its own Worker at the same time as that lcore works on the burst
// before, and sends it on that queue once the burst before has gone. Every
// burst is worked on where it was read, so no packet crosses to another
// core's cache on the way, and one queue's packets leave in the order they
// came. Two exceptions, both at the start of a flow: a datagram an lcore
// holds while its link resolves the next hop leaves later, on that lcore's
// own queue (the lcores tell each other of the requests they send, so an
// answer that comes after is learnt by all, underlay_link.h); and a packet
// that waits for a session goes out with the handshake context's, as
// without turns.
//
// A vhost-user socket with a queue pair per lcore (set_vhost_queues): an
// lcore whose pair the application does not receive on hands its packets
// for it to an lcore whose pair it does (dpdk_vhost.h), which sends them in
// its next round (up to kMaxHandedBursts bursts).
//
// The owner calls poll() in a loop on the lcore and configures the Device
// between the first lcore's calls.
//
// Threads: each Lcore is used by one thread, its lcore's.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <memory>
#include <span>
#include <vector>

#include "dataplane/clock.h"
#include "dataplane/container_port.h"
#include "dataplane/counters.h"
#include "dataplane/device.h"
#include "dataplane/dpdk_port.h"
#include "dataplane/dpdk_vhost.h"
#include "dataplane/inner_link.h"
#include "dataplane/rcu.h"
#include "dataplane/turns.h"
#include "dataplane/underlay_link.h"
#include "dataplane/worker.h"

namespace faraday::dataplane::dpdk {

class Lcore {
 public:
  static constexpr Nanos kRetryEvery = 100 * kMillisecond;
  // Bursts of other lcores' packets for a vhost-user application sent per round.
  static constexpr int kMaxHandedBursts = 16;

  // worker: this lcore is one of the Device's workers (Device::add_worker), on
  // queue `queue`; none: the handshake context.
  Lcore(Device& dev, const Clock& clock, Port& inner, Port& underlay, UnderlayLink& link,
        uint16_t queue = 0, Worker* worker = nullptr)
      : dev_(dev),
        clock_(clock),
        inner_(inner),
        queue_(queue),
        worker_(worker),
        link_(link),
        tx_(underlay, queue, link),
        rx_(underlay, queue, link) {}

  // The inner port is a TAP whose L2 side this link keeps. Before poll().
  void set_inner_link(InnerLink* link) { inner_link_ = link; }
  // Several lcores: this one is `index` on board. Before poll().
  void set_news(NewsBoard* board, unsigned index) {
    board_ = board;
    index_ = index;
    link_.share_news();
  }
  // The handshake context of a Device with workers: service() every round.
  void serve_workers() { serve_workers_ = true; }
  // The inner port is a vhost-user socket whose queues these are. Before poll().
  void set_vhost_queues(VhostQueues* queues) { vhost_ = queues; }
  // Several lcores: every queue's turns (turns.h), indexed by queue, on both
  // ports; both ports share_tx(). Before poll().
  void set_turns(std::span<QueueTurns> turns) { turns_ = turns; }
  // This lcore's thread is an RCU reader (a worker lcore's, rcu.h): it goes
  // offline while it waits for its turn to send, since the lcore with the
  // turn before may be the handshake context in rcu_synchronize. Before poll();
  // a worker lcore with turns must have it, or that wait never ends.
  void set_rcu(RcuReader* rcu) { rcu_ = rcu; }

  // Decrypted packets to the container prefix go to their container's TAP
  // (container_port.h), from the table published there. Before poll().
  void set_containers(const std::atomic<const ContainerTable*>* table) { containers_ = table; }

  // One round; returns the packets taken from either port (0: it found none).
  size_t poll();
  // The handshake context (the first lcore's thread, between rounds):
  // datagrams sealed outside the rounds (a container's) sent as copies, as
  // the outbox is.
  size_t send_copies(std::span<const Packet> pkts) {
    return tx_.send_copies(pkts, clock_.monotonic());
  }

  const Transmit& transmit() const { return tx_; }
  const Receive& receive() const { return rx_; }
  struct Counters {
    Counter inner_rx;            // packets read from the inner port
    Counter inner_tx;            // packets the inner port took (Port::tx counts the rest)
    Counter inner_chained;       // a TAP's frames in more than one mbuf: dropped
    Counter inner_answers_lost;  // a TAP's ARP or ND answer longer than its request's mbuf
    Counter inner_handed;        // packets for a vhost-user application sent by another lcore
    Counter inner_handed_lost;   // ... that found that lcore's ring full: dropped
    Counter turns_taken;         // bursts read from another lcore's queues (set_turns)
    Counter container_unknown;   // decrypted, to a container prefix address nobody holds
  };
  const Counters& counters() const { return counters_; }

 private:
  // Each from queue q: this lcore's own, or another's on a turn.
  size_t to_underlay(Nanos now, uint16_t q);
  uint16_t strip_frames(uint16_t n, uint16_t q);
  uint16_t add_frames(uint16_t n);
  size_t to_inner(Nanos now, uint16_t q);
  // The other lcores' queues, a burst each way where there is one.
  size_t take_turns(Nanos now);
  // Returns once the bursts read before `ticket` have gone.
  void await_turn(const Turns& turns, uint64_t ticket);
  // The first n of mbufs_ (decrypted packets) to the inner port's queue q,
  // framed for the host on a TAP or vhost-user socket.
  void send_inner(uint16_t n, uint16_t q);
  // The first n of mbufs_ (decrypted packets) to another lcore's ring, when
  // the vhost-user application does not receive on queue q; false: not.
  bool hand_over(uint16_t n, uint16_t q);
  // Another lcore's packets for the vhost-user application, onto this queue.
  size_t take_handed();
  void flush_outbox(Nanos now);
  // The first n of mbufs_ (decrypted packets): those for containers written
  // to their TAPs and freed; returns how many stay, at the front.
  uint16_t divert_to_containers(uint16_t n);

  Device& dev_;
  const Clock& clock_;
  Port& inner_;
  uint16_t queue_;
  Worker* worker_;
  UnderlayLink& link_;
  InnerLink* inner_link_ = nullptr;
  NewsBoard* board_ = nullptr;
  unsigned index_ = 0;
  bool serve_workers_ = false;
  std::span<QueueTurns> turns_;
  RcuReader* rcu_ = nullptr;
  VhostQueues* vhost_ = nullptr;
  const std::atomic<const ContainerTable*>* containers_ = nullptr;
  Transmit tx_;
  Receive rx_;
  std::array<rte_mbuf*, kBurstSize> mbufs_{};
  std::array<Packet, kBurstSize> pkts_{};
  std::array<Verdict, kBurstSize> verdicts_{};
  Nanos next_retry_ = 0;
  uint64_t seen_frames_ = 0, seen_heard_ = 0;  // the counters at the last look at what is held
  Nanos next_expire_ = 0;
  Counters counters_;
};

}  // namespace faraday::dataplane::dpdk
