// dpdk_lcore.cpp: see dpdk_lcore.h.
#include "dataplane/dpdk_lcore.h"

#include <rte_mbuf.h>
#include <rte_ring.h>

#include <cassert>
#include <cstring>

namespace faraday::dataplane::dpdk {

size_t Lcore::poll() {
  const Nanos now = clock_.monotonic();
  if (board_) board_->deliver(index_, link_, now);
  size_t moved = vhost_ ? take_handed() : 0;
  moved += to_inner(now, queue_);
  // Held datagrams go as soon as a frame (an answer, perhaps) came in since
  // the last look, here or on a turn at the end of the last round, or
  // another lcore's news, before newer packets of theirs; and every
  // kRetryEvery, so late ones are freed.
  const uint64_t frames = rx_.counters().frames;
  const uint64_t heard = link_.counters().heard;
  if (tx_.held() && (frames != seen_frames_ || heard != seen_heard_ || now >= next_retry_)) {
    tx_.retry(now);
    next_retry_ = now + kRetryEvery;
  }
  seen_frames_ = frames;
  seen_heard_ = heard;
  if (!worker_) {
    if (serve_workers_) dev_.service();  // what the other lcores handed over
    // Handshake answers first: they may carry what the data waits for.
    flush_outbox(now);
  }
  moved += to_underlay(now, queue_);
  if (!worker_) {
    flush_outbox(now);
    if (dev_.next_deadline() <= now) {
      dev_.tick();
      flush_outbox(now);
    }
  }
  if (now >= next_expire_) {
    link_.expire(now);
    next_expire_ = now + kSecond;
  }
  // Nothing came on this lcore's queues: a turn on the others'.
  if (!turns_.empty() && moved == 0) moved = take_turns(now);
  if (board_) board_->publish(index_, link_);
  return moved;
}

size_t Lcore::take_turns(Nanos now) {
  size_t moved = 0;
  const size_t queues = turns_.size();
  for (size_t k = 1; k < queues; ++k) {
    const auto q = static_cast<uint16_t>((queue_ + k) % queues);
    moved += to_inner(now, q);
    moved += to_underlay(now, q);
  }
  return moved;
}

// A worker holds nothing from the peer table once its burst went through the
// Device, so it may wait offline.
void Lcore::await_turn(const Turns& turns, uint64_t ticket) {
  if (turns.ready(ticket)) return;
  assert(rcu_ || !worker_);  // set_rcu
  if (rcu_) rcu_->offline();
  turns.await(ticket);
  if (rcu_) rcu_->online();
}

// With turns, the read holds queue q; the send waits for the bursts read before.
size_t Lcore::to_underlay(Nanos now, uint16_t q) {
  Turns* turns = turns_.empty() ? nullptr : &turns_[q].inner;
  if (turns && !turns->try_read()) return 0;
  uint16_t n = inner_.rx(q, mbufs_.data(), kBurstSize);
  if (n == 0) {
    if (turns) turns->read_none();
    return 0;
  }
  const uint64_t ticket = turns ? turns->read_done() : 0;
  if (q != queue_) ++counters_.turns_taken;
  counters_.inner_rx += n;
  const uint16_t taken = n;
  if (inner_link_) n = strip_frames(n, q);
  for (uint16_t i = 0; i < n; ++i) pkts_[i] = packet_of(mbufs_[i]);
  if (worker_)
    dev_.send_burst(*worker_, {pkts_.data(), n}, {verdicts_.data(), n});
  else
    dev_.send_burst({pkts_.data(), n}, {verdicts_.data(), n});
  if (turns) await_turn(*turns, ticket);
  tx_.send_on(q, {mbufs_.data(), n}, {pkts_.data(), n}, {verdicts_.data(), n}, now);
  if (turns) turns->sent(ticket);
  return taken;
}

// A TAP's (or vhost-user socket's) frames: IP packets lose their Ethernet header and stay (in order
// at the front of mbufs_), ARP and NS are answered, the rest freed. Returns how many stay.
uint16_t Lcore::strip_frames(uint16_t n, uint16_t q) {
  uint16_t kept = 0;
  for (uint16_t i = 0; i < n; ++i) {
    rte_mbuf* m = mbufs_[i];
    std::array<uint8_t, InnerLink::kControlFrameSize> answer;
    size_t answer_length = 0;
    if (m->nb_segs != 1) {
      ++counters_.inner_chained;
      rte_pktmbuf_free(m);
      continue;
    }
    const InnerLink::Rx rx = inner_link_->receive(
        {rte_pktmbuf_mtod(m, const uint8_t*), m->data_len}, answer, answer_length);
    if (rx == InnerLink::Rx::kPacket) {
      rte_pktmbuf_adj(m, kEthernetHeader);
      mbufs_[kept++] = m;
      continue;
    }
    if (rx == InnerLink::Rx::kAnswer) {
      // The request's own mbuf carries the answer back.
      if (answer_length <= size_t{rte_pktmbuf_tailroom(m)} + m->data_len) {
        std::memcpy(rte_pktmbuf_mtod(m, uint8_t*), answer.data(), answer_length);
        m->data_len = static_cast<uint16_t>(answer_length);
        m->pkt_len = static_cast<uint32_t>(answer_length);
        // Port::tx frees (and counts as tx_full) what the queue has no room for.
        inner_.tx(q, &m, 1);
        continue;
      }
      ++counters_.inner_answers_lost;
    }
    rte_pktmbuf_free(m);
  }
  return kept;
}

// Ethernet headers for the host in front of the first n packets of mbufs_;
// one that has no room or no IP version is freed (and left out).
uint16_t Lcore::add_frames(uint16_t n) {
  uint16_t kept = 0;
  for (uint16_t i = 0; i < n; ++i) {
    rte_mbuf* m = mbufs_[i];
    const uint8_t first = *rte_pktmbuf_mtod(m, const uint8_t*);
    auto* header = reinterpret_cast<uint8_t*>(rte_pktmbuf_prepend(m, kEthernetHeader));
    if (header && inner_link_->write_header(header, first)) {
      mbufs_[kept++] = m;
    } else {
      rte_pktmbuf_free(m);
    }
  }
  return kept;
}

size_t Lcore::to_inner(Nanos now, uint16_t q) {
  Turns* turns = turns_.empty() ? nullptr : &turns_[q].underlay;
  if (turns && !turns->try_read()) return 0;
  const size_t n = rx_.poll(q, mbufs_, pkts_, now);
  if (n == 0) {
    if (turns) turns->read_none();
    return 0;
  }
  const uint64_t ticket = turns ? turns->read_done() : 0;
  if (q != queue_) ++counters_.turns_taken;
  if (worker_)
    dev_.receive_burst(*worker_, {pkts_.data(), n}, {verdicts_.data(), n});
  else
    dev_.receive_burst({pkts_.data(), n}, {verdicts_.data(), n});
  uint16_t out = 0;
  for (size_t i = 0; i < n; ++i) {
    if (verdicts_[i] == Verdict::kPass) {
      take_packet(mbufs_[i], pkts_[i]);
      mbufs_[out++] = mbufs_[i];
    } else {
      // Handshake messages were taken by the core, drops were counted.
      rte_pktmbuf_free(mbufs_[i]);
    }
  }
  if (turns) await_turn(*turns, ticket);
  if (out > 0 && containers_) out = divert_to_containers(out);
  if (out == 0 || !vhost_ || !hand_over(out, q)) send_inner(out, q);
  if (turns) turns->sent(ticket);
  return n;
}

uint16_t Lcore::divert_to_containers(uint16_t n) {
  const ContainerTable* table = containers_->load(std::memory_order_acquire);
  if (table == nullptr) return n;
  uint16_t kept = 0;
  for (uint16_t i = 0; i < n; ++i) {
    rte_mbuf* m = mbufs_[i];
    Packet p = packet_of(m);
    ContainerTap* tap = nullptr;
    switch (table->find(p, tap)) {
      case ContainerTable::Dst::kHost:
        mbufs_[kept++] = m;
        continue;
      case ContainerTable::Dst::kContainer:
        tap->deliver(p);
        break;
      case ContainerTable::Dst::kNone:
        ++counters_.container_unknown;
        break;
    }
    rte_pktmbuf_free(m);
  }
  return kept;
}

void Lcore::send_inner(uint16_t n, uint16_t q) {
  if (inner_link_) n = add_frames(n);
  counters_.inner_tx += inner_.tx(q, mbufs_.data(), n);
}

// Unframed: the lcore that sends them frames them with its own InnerLink.
bool Lcore::hand_over(uint16_t n, uint16_t q) {
  // While the application has no pair at all, the packets go to queue q,
  // which takes nothing: freed and counted (inner_tx_full).
  const uint64_t receiving = vhost_->receiving();
  if (receiving == 0 || (receiving >> q & 1) != 0) return false;
  rte_ring* ring = vhost_->ring(VhostQueues::pick(receiving, q));
  const unsigned handed =
      rte_ring_enqueue_burst(ring, reinterpret_cast<void* const*>(mbufs_.data()), n, nullptr);
  counters_.inner_handed += handed;
  counters_.inner_handed_lost += n - handed;
  for (unsigned i = handed; i < n; ++i) rte_pktmbuf_free(mbufs_[i]);
  return true;
}

// Up to kMaxHandedBursts bursts a round: several lcores may hand to this one.
size_t Lcore::take_handed() {
  size_t taken = 0;
  for (int burst = 0; burst < kMaxHandedBursts; ++burst) {
    const unsigned n = rte_ring_dequeue_burst(
        vhost_->ring(queue_), reinterpret_cast<void**>(mbufs_.data()), kBurstSize, nullptr);
    if (n == 0) break;
    taken += n;
    // This pair went away since they were handed here: on to one that is left.
    if (!hand_over(static_cast<uint16_t>(n), queue_)) send_inner(static_cast<uint16_t>(n), queue_);
    if (n < kBurstSize) break;
  }
  return taken;
}

void Lcore::flush_outbox(Nanos now) {
  std::span<Packet> box = dev_.outbox();
  if (box.empty()) return;
  tx_.send_copies(box, now);
  dev_.clear_outbox();
}

}  // namespace faraday::dataplane::dpdk
