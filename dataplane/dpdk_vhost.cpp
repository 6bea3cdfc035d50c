// dpdk_vhost.cpp: see dpdk_vhost.h.
#include "dataplane/dpdk_vhost.h"

#include <rte_eth_vhost.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include <bit>
#include <thread>

#include <fmt/core.h>

namespace faraday::dataplane::dpdk {

namespace {

// Packets waiting for another lcore's queue: 64 bursts.
constexpr unsigned kRingSize = 4096;

int on_event(uint16_t, rte_eth_event_type event, void* self, void*) {
  static_cast<VhostQueues*>(self)->update(event == RTE_ETH_EVENT_INTR_LSC);
  return 0;
}

constexpr rte_eth_event_type kEvents[] = {RTE_ETH_EVENT_QUEUE_STATE, RTE_ETH_EVENT_INTR_LSC};

}  // namespace

Result<std::unique_ptr<VhostQueues>> VhostQueues::watch(uint16_t port, uint16_t queues) {
  if (queues == 0 || queues > kMaxQueues)
    return Error{
        fmt::format("a vhost-user socket has 1 to {} queue pairs, not {}", kMaxQueues, queues)};
  std::unique_ptr<VhostQueues> q(new VhostQueues(port));
  for (uint16_t i = 0; i < queues; ++i) {
    const std::string ring_name = fmt::format("vhost{}_handed{}", port, i);
    rte_ring* ring = rte_ring_create(ring_name.c_str(), kRingSize, SOCKET_ID_ANY,
                                     RING_F_MP_RTS_ENQ | RING_F_SC_DEQ);
    if (!ring)
      return Error{fmt::format("vhost-user socket: cannot make hand-off ring {}: {}", ring_name,
                               rte_strerror(rte_errno))};
    q->rings_.push_back(ring);
  }
  for (rte_eth_event_type event : kEvents)
    if (int rc = rte_eth_dev_callback_register(port, event, on_event, q.get()); rc != 0)
      return Error{
          fmt::format("vhost-user socket: cannot follow its queues: {}", rte_strerror(-rc))};
  q->update(true);  // what came before the callbacks
  return q;
}

VhostQueues::~VhostQueues() {
  // Both, whichever watch() registered (none is no error). -EAGAIN: the
  // callback is running now; it is gone once that returns.
  for (rte_eth_event_type event : kEvents)
    while (rte_eth_dev_callback_unregister(port_, event, on_event, this) == -EAGAIN)
      std::this_thread::yield();
  for (rte_ring* ring : rings_) {
    void* m = nullptr;
    while (rte_ring_dequeue(ring, &m) == 0) rte_pktmbuf_free(static_cast<rte_mbuf*>(m));
    rte_ring_free(ring);
  }
}

uint16_t VhostQueues::pick(uint64_t receiving, uint16_t from) {
  auto nth = static_cast<unsigned>(from % std::popcount(receiving));
  for (; nth > 0; --nth) receiving &= receiving - 1;  // drops the lowest set bit
  return static_cast<uint16_t>(std::countr_zero(receiving));
}

void VhostQueues::update(bool link_changed) {
  std::lock_guard lock(mu_);
  rte_eth_vhost_queue_event event{};
  while (rte_eth_vhost_get_queue_event(port_, &event) == 0) {
    // rx: the application's TX queue (our RX); the others it receives on.
    if (event.rx || event.queue_id >= rings_.size()) continue;
    const uint64_t bit = uint64_t{1} << event.queue_id;
    enabled_ = event.enable ? enabled_ | bit : enabled_ & ~bit;
  }
  if (link_changed) {
    rte_eth_link link{};
    link_up_ = rte_eth_link_get_nowait(port_, &link) == 0 && link.link_status == RTE_ETH_LINK_UP;
    // The application left: net_vhost forgets its queues without an event.
    if (!link_up_) enabled_ = 0;
  }
  receiving_.store(link_up_ ? enabled_ : 0, std::memory_order_release);
}

}  // namespace faraday::dataplane::dpdk
