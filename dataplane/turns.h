// turns.h: one queue's bursts, worked on by several threads at once, sent in
// the order they were read.
//
// A queue (a TUN queue, a UDP socket, a DPDK RX queue) is read by one thread
// at a time, and the order of its packets is the order of its reads. Turns
// lets any thread take the next burst: it reads while it holds the queue
// (try_read, then read_done, which gives the burst its ticket, or read_none
// when the queue was empty), works on the burst alone and at once with the
// others (the AEAD: what takes long), then waits until every burst read before
// it has been sent (await), sends, and passes the turn on (sent). So one
// queue's bursts use as many cores as take turns on it, and still leave in the
// order they came.
//
// No deadlock as long as a thread waits only for tickets before the oldest
// one it holds, and sends the ones it holds in ticket order: the holder of a
// queue's oldest unsent ticket can then always send it. A thread may hold
// several tickets of one queue (the kernel path's workers keep two bursts in
// flight, queue_worker.h); a wait across two Turns must always go the same
// way (there, only the handshake context does it: holding a socket's ticket,
// it takes its own TUN queue's for its handshake messages). One wait hides in
// the data path: the handshake context's rcu_synchronize (rcu.h) waits for
// every online RCU reader, so a reader that waits for its turn must be
// offline meanwhile (dpdk_lcore.cpp, queue_worker.cpp). A thread that the
// kernel preempts holding a ticket delays the later ones (they spin), as a
// helper preempted in the middle of a piece delays its caller
// (crypto/aead_parallel.h).
//
// Threads: any; each reads and sends under the rules above.
#pragma once

#include <atomic>
#include <cstdint>

namespace faraday::dataplane {

class Turns {
 public:
  // True: this thread now holds the queue and may read it; read_done or
  // read_none must follow. False: another thread is reading it.
  bool try_read() {
    return !reading_.load(std::memory_order_relaxed) &&
           !reading_.exchange(true, std::memory_order_acquire);
  }
  // After a read that found packets: the burst's ticket. The queue is free.
  uint64_t read_done() {
    const uint64_t ticket = next_++;
    reading_.store(false, std::memory_order_release);
    return ticket;
  }
  // After a read that found nothing: no ticket. The queue is free.
  void read_none() { reading_.store(false, std::memory_order_release); }
  // Whether the bursts of every earlier ticket have been sent.
  bool ready(uint64_t ticket) const { return sent_.load(std::memory_order_acquire) == ticket; }
  // Returns once they have (spins).
  void await(uint64_t ticket) const {
    while (sent_.load(std::memory_order_acquire) != ticket) relax();
  }
  // The burst of `ticket` has been sent: the next one may go.
  void sent(uint64_t ticket) { sent_.store(ticket + 1, std::memory_order_release); }
  // One step of a spin wait (the CPU's pause).
  static void relax() {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    asm volatile("yield");
#endif
  }

 private:
  alignas(64) std::atomic<bool> reading_{false};
  uint64_t next_ = 0;  // the next ticket; the reader's alone
  alignas(64) std::atomic<uint64_t> sent_{0};
};

// One queue pair's turns: its inner side (packets to seal: a TUN queue, a DPDK
// inner port's RX queue) and its underlay side (datagrams to open: a UDP socket,
// a DPDK underlay port's RX queue).
struct QueueTurns {
  Turns inner;
  Turns underlay;
};

}  // namespace faraday::dataplane
