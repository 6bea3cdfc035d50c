// queue_worker.h: one data-path worker thread of a Pipeline (pipeline.h): it
// owns one TUN queue and one UDP socket of the interface's reuseport group, and
// runs the Device's data path on them in bursts, to completion, with its own
// Worker (worker.h) and AEAD backend. The pipeline's own thread is the
// handshake context and the first queue's worker; these are the others.
//
// The loop polls its TUN queue, its socket and a stop eventfd, offline for RCU
// while it sleeps (rcu.h), and idle for its AEAD, so other workers' bursts may
// use its core meanwhile (crypto/aead_parallel.h); after each pass it reports a
// quiescent state. It
// never blocks on the control thread: what it hands over goes through its
// Worker's rings.
//
// Threads: the constructor, start(), stop(), replace_udp() and the destructor
// run on the pipeline's thread; counters() on any thread; the rest on the
// worker's thread.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <thread>
#include <utility>

#include "crypto/aead_parallel.h"
#include "dataplane/device.h"
#include "dataplane/rcu.h"
#include "dataplane/tun_port.h"
#include "dataplane/udp_port.h"

namespace faraday::dataplane {

// Sends (writes) all of pkts, waiting a little for room when the socket (TUN
// queue) is full; what still does not fit is dropped and counted by the port.
void send_all(UdpPort& udp, std::span<Packet> pkts);
void write_all(TunPort& tun, std::span<Packet> pkts);

class QueueWorker {
 public:
  QueueWorker(Device& dev, std::unique_ptr<crypto::ParallelAead> aead, TunPort tun, UdpPort udp,
              uint32_t mtu);
  ~QueueWorker();
  QueueWorker(const QueueWorker&) = delete;
  QueueWorker& operator=(const QueueWorker&) = delete;

  void start();
  void stop();  // joins the thread; start() may follow
  // With the thread stopped: a new socket (the listen port changed).
  void replace_udp(UdpPort udp);
  int udp_fd() const { return udp_.fd(); }
  // The ports' counters as of the last few hundred milliseconds.
  std::pair<TunPortCounters, UdpPortCounters> counters() const;

 private:
  void run();
  void on_tun();
  void on_udp();
  void publish_counters();

  Device& dev_;
  RcuReader* rcu_ = nullptr;                    // the worker thread's, while it runs
  std::unique_ptr<crypto::ParallelAead> aead_;  // idle while the loop sleeps
  Worker& worker_;
  TunPort tun_;
  UdpPort udp_;
  PacketArena tun_rx_;
  PacketArena udp_rx_{kBurstSize};  // full-size: any datagram reaches the core
  std::array<Verdict, kBurstSize> verdicts_{};
  std::array<Packet, kBurstSize> out_{};
  int stop_fd_ = -1;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  mutable std::mutex counters_mu_;  // the snapshot only, never on the packet path
  std::pair<TunPortCounters, UdpPortCounters> snapshot_;
};

}  // namespace faraday::dataplane
