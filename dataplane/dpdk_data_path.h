// dpdk_data_path.h: the data path (data_path.h) on DPDK ports that faradayd
// drives itself: the underlay, a NIC (or a DPDK virtual device) on which
// faradayd owns L2 and L3 (underlay_link.h), and the inner side, a kernel TAP
// (net_tap, faradayd the host's one neighbour on it: inner_link.h), a TUN
// (net_tun) or a vhost-user socket (net_vhost) for a DPDK application.
//
// The EAL must be running with both devices (dpdk_port.h: init_eal). Each
// of its lcores polls a queue pair of both ports (dpdk_lcore.h); the port
// spreads flows over the queues (RSS, a TAP's queues, af_packet's fanout).
// The thread that calls run() is the first lcore, the Device's handshake
// context; run() starts a thread for each of the others, pinned to that EAL
// worker lcore's CPUs and registered with DPDK (rte_thread_register: the
// EAL's launch calls are for the main lcore, which in cluster mode is the
// control thread), and joins them before it returns. Between rounds of 64 polls the first lcore
// polls the wake-up eventfd (posted commands, stop(), the workers' hand-overs), the watched fds and
// the services' fds (the UAPI socket). Every lcore polls all the time unless idle_sleep_us is set:
// then a round that found nothing waits that long (for those fds, on the first lcore: a shared
// core, a test machine). run() may be called on the EAL's main lcore or on a thread of the caller's
// (cluster mode): such a thread is pinned to the main lcore's CPUs and registered with DPDK for
// run()'s duration, so the mempool caches serve it.
//
// An lcore that found nothing on its own queues takes turns on the others'
// (dpdk_lcore.h, turns.h): one tunnel's bursts, which the ports keep on one
// queue, are sealed and opened on every lcore that has nothing else to do,
// and leave in order.
//
// Each lcore keeps its own UnderlayLink and InnerLink: neighbour answers reach
// the others (NewsBoard). On a TAP the host's MAC is known from the start; a
// vhost-user application's is learnt from its frames. A vhost-user socket has
// a queue pair per lcore; an application that enables fewer still gets every
// lcore's packets (dpdk_vhost.h).
//
// What wg(8) may not change here: the UDP port (fixed on the port) and the
// fwmark (a NIC of our own has none); apply() refuses both with the reason.
#pragma once

#include <fmt/core.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "crypto/aead_batch.h"
#include "dataplane/clock.h"
#include "dataplane/data_path.h"
#include "dataplane/dpdk_lcore.h"
#include "dataplane/inner_link.h"
#include "dataplane/underlay_link.h"

namespace faraday::dataplane::dpdk {

// An inner packet, the transport header, tag and padding (48), and the frame's
// headers (IPv6: 62) in the 2048 data bytes of an mbuf, rounded down.
constexpr uint32_t kMaxMtu = 1920;
// What a datagram adds to an inner packet on the wire, IP and UDP headers
// included (IPv6), as wireguard-go and Linux count it.
constexpr uint32_t kUnderlayOverhead = 80;

enum class InnerKind { kTap, kTun, kVhost };

struct DataPathOptions {
  // The TAP's or TUN's name; with a vhost-user socket, the interface's name
  // for the UAPI and the log (no kernel interface has it).
  std::string ifname;
  InnerKind inner = InnerKind::kTap;
  std::string underlay_device;  // the devices the EAL was started with
  std::string inner_device;
  UnderlayAddress self;  // this node on the underlay; the MAC is the port's
  uint32_t mtu = 1420;
  std::string aead_backend;  // empty: the fastest that passes its self-test
  unsigned idle_sleep_us = 0;
  uint32_t stats_interval_s = 10;
  LogSink log;
};

class DpdkDataPath : public DataPath {
 public:
  // Opens both ports, the WireGuard core and the lcores; an error
  // naming what failed otherwise.
  static Result<std::unique_ptr<DpdkDataPath>> open(DataPathOptions options);
  ~DpdkDataPath() override;
  DpdkDataPath(const DpdkDataPath&) = delete;
  DpdkDataPath& operator=(const DpdkDataPath&) = delete;

  void watch(int fd, std::function<bool()> on_ready) override;
  void attach(std::unique_ptr<PollService> service) override;
  Exit run() override;
  bool post(Command command) override;
  void stop() override;
  Result<void, ApplyError> apply(const ConfigUpdate& req, bool log_peers = true) override;
  DeviceState state() const override;
  void log_stats(bool force) override;
  // "mtu 1420, DPDK underlay net_af_packet0 (net_af_packet, MAC ..), UDP port
  // 51820, a tap inner side, AEAD sodium, 2 lcores (a queue pair each), polling
  // all the time".
  std::string summary() const override;
  const std::string& aead_choice() const override { return aead_.reason; }
  const std::string& ifname() const override { return options_.ifname; }
  const Device& device() const override { return *dev_; }
  // A kernel TAP per container, as on the kernel path: read by the first
  // lcore's thread between rounds, written by the lcore that opened the
  // packets for it.
  Status set_containers(std::optional<Prefix> prefix,
                        std::vector<std::shared_ptr<ContainerTap>> taps) override;

 private:
  explicit DpdkDataPath(DataPathOptions options) : options_(std::move(options)) {}
  Result<void> open_parts();
  void attach_inner_links();
  void log_ports(size_t lcore) const;
  // A worker lcore's loop, on a thread of its own pinned to that lcore's
  // CPUs and registered with DPDK, until run() ends.
  void run_worker(size_t index);
  Result<void> launch_workers();
  void stop_workers();
  // The fds that are ready, waiting up to `timeout` for one; false ends run().
  bool poll_fds(const timespec& timeout, Exit& exit);
  // About once a second: is the interface (and every service) still there?
  bool check_alive(Exit& exit);
  template <typename... Args>
  void log(LogLevel level, fmt::format_string<Args...> format, Args&&... args) const {
    if (options_.log) options_.log(level, fmt::format(format, std::forward<Args>(args)...));
  }

  DataPathOptions options_;
  // Both ports stop before either pool is freed: each holds the other's mbufs.
  std::unique_ptr<Port> underlay_, inner_;
  std::unique_ptr<VhostQueues> vhost_queues_;  // a vhost-user socket on several lcores
  crypto::AeadChoice aead_;
  SystemClock clock_;
  // One of each per lcore, the first the handshake context's (the Device's
  // AEAD; the others' are their Workers').
  std::vector<std::unique_ptr<crypto::AeadBackend>> lcore_aeads_;
  std::unique_ptr<QueueTurns[]> turns_;  // per queue, with several lcores; outlives lcores_
  std::unique_ptr<Device> dev_;
  std::vector<std::unique_ptr<UnderlayLink>> links_;
  std::vector<std::unique_ptr<InnerLink>> inner_links_;  // a TAP's or vhost socket's L2 side
  std::atomic<uint64_t> inner_host_{0};  // the host's MAC as any of them heard it last
  std::vector<std::unique_ptr<Lcore>> lcores_;
  std::unique_ptr<NewsBoard> board_;  // with more than one lcore
  std::vector<unsigned> worker_ids_;  // the EAL's worker lcores, lcores_[1...]
  std::vector<std::thread> worker_threads_;
  std::atomic<bool> workers_stop_{false};
  std::vector<std::unique_ptr<PollService>> services_;
  std::vector<std::pair<int, std::function<bool()>>> watched_;
  std::vector<pollfd> fds_;
  std::unique_ptr<ContainerPorts> containers_;
  std::array<Verdict, kBurstSize> tap_verdicts_{};
  std::array<Packet, kBurstSize> tap_out_{};
  CommandInbox inbox_;
  Counters logged_;  // what the last "stats:" line said
  Nanos last_stats_ = 0;
};

}  // namespace faraday::dataplane::dpdk
