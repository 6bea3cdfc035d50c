// dpdk_vhost.h: a vhost-user socket (net_vhost) with a queue pair per lcore,
// served to an application that may use fewer of them.
//
// The application attached to the socket (virtio-user) chooses how many
// queue pairs it enables; net_vhost takes nothing on a pair it has not (the
// lcore frees the packets and counts them, inner_tx_full). VhostQueues
// follows the application: net_vhost reports each queue it enables or
// disables (RTE_ETH_EVENT_QUEUE_STATE), and a link down (the application
// left: RTE_ETH_EVENT_INTR_LSC) clears them all. It keeps a mask of the
// pairs the application receives on (has enabled; one it enables and never
// polls loses what comes on it), and a hand-off ring per lcore. An lcore
// whose own pair is not among them puts its packets for the application on
// the ring of one whose pair is (pick); that lcore sends them in its next
// round (dpdk_lcore.h), or hands them on again if its own pair went away
// meanwhile. One flow comes in on one underlay queue, so it takes one way to
// the application and stays in order, except across a change of the mask:
// then packets still in a ring may arrive after newer ones that took the new
// way. With --dpdk-idle-sleep, handed packets wait out the receiving lcore's
// sleep, as its own queues' packets do.
//
// Threads: the events come on lib/vhost's vhost-events thread; receiving()
// may be read on any thread; a ring has many producers (the lcores, in RTS
// mode: one preempted mid-enqueue does not hold the others up) and one
// consumer (its lcore). The constructor and destructor run on the owner's
// thread, with no lcore polling.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "result.h"

struct rte_ring;

namespace faraday::dataplane::dpdk {

class VhostQueues {
 public:
  static constexpr uint16_t kMaxQueues = 64;  // the mask's bits
  // Follows `port`'s (a net_vhost port with `queues` queue pairs, at most
  // kMaxQueues) events.
  static Result<std::unique_ptr<VhostQueues>> watch(uint16_t port, uint16_t queues);
  // Stops following the events, then frees what the rings still hold.
  ~VhostQueues();
  VhostQueues(const VhostQueues&) = delete;
  VhostQueues& operator=(const VhostQueues&) = delete;

  // Bit q: the application now receives on queue q.
  uint64_t receiving() const { return receiving_.load(std::memory_order_acquire); }
  // The queue whose lcore takes queue `from`'s packets for the application:
  // one of `receiving` (not 0), the same for the same arguments, and spread
  // over them as `from` goes up.
  static uint16_t pick(uint64_t receiving, uint16_t from);
  // Lcore q's hand-off ring.
  rte_ring* ring(uint16_t queue) const { return rings_[queue]; }
  // Takes every queue event net_vhost holds and, when the link changed, the
  // link's state: no queue while it is down. On each event (the vhost-events
  // thread), and once at the start.
  void update(bool link_changed);

 private:
  explicit VhostQueues(uint16_t port) : port_(port) {}

  uint16_t port_;
  std::mutex mu_;         // update()'s, never on the packet path
  uint64_t enabled_ = 0;  // queues the application enabled (mu_)
  bool link_up_ = false;  // (mu_)
  std::atomic<uint64_t> receiving_{0};
  std::vector<rte_ring*> rings_;
};

}  // namespace faraday::dataplane::dpdk
