// dpdk_lcore.cpp: see dpdk_lcore.h.
#include "dataplane/dpdk_lcore.h"

#include <rte_mbuf.h>

namespace faraday::dataplane::dpdk {

size_t Lcore::poll() {
  const Nanos now = clock_.monotonic();
  const uint64_t frames = rx_.counters().frames;
  size_t moved = to_inner(now);
  // Held datagrams go as soon as a frame (an answer, perhaps) came in, before
  // newer packets of theirs; and every kRetryEvery, so late ones are freed.
  if (tx_.held() && (rx_.counters().frames != frames || now >= next_retry_)) {
    tx_.retry(now);
    next_retry_ = now + kRetryEvery;
  }
  // Handshake answers first: they may carry what the data waits for.
  flush_outbox(now);
  moved += to_underlay(now);
  flush_outbox(now);
  if (dev_.next_deadline() <= now) {
    dev_.tick();
    flush_outbox(now);
  }
  if (now >= next_expire_) {
    link_.expire(now);
    next_expire_ = now + kSecond;
  }
  return moved;
}

size_t Lcore::to_underlay(Nanos now) {
  const uint16_t n = inner_.rx(queue_, mbufs_.data(), kBurstSize);
  if (n == 0) return 0;
  counters_.inner_rx += n;
  for (uint16_t i = 0; i < n; ++i) pkts_[i] = packet_of(mbufs_[i]);
  dev_.send_burst({pkts_.data(), n}, {verdicts_.data(), n});
  tx_.send({mbufs_.data(), n}, {pkts_.data(), n}, {verdicts_.data(), n}, now);
  return n;
}

size_t Lcore::to_inner(Nanos now) {
  const size_t n = rx_.poll(mbufs_, pkts_, now);
  if (n == 0) return 0;
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
  counters_.inner_tx += inner_.tx(queue_, mbufs_.data(), out);
  return n;
}

void Lcore::flush_outbox(Nanos now) {
  std::span<Packet> box = dev_.outbox();
  if (box.empty()) return;
  tx_.send_copies(box, now);
  dev_.clear_outbox();
}

}  // namespace faraday::dataplane::dpdk
