// pipeline.h: the data path (data_path.h) on kernel sockets: the TUN device, a
// UDP socket and the WireGuard core (device.h) between them. The UAPI
// socket is not served here: faradayd attaches it as a PollService
// (control/interface.h).
//
// The loop (run()) polls the TUN device, the UDP socket, a wake-up eventfd,
// any fd the owner watches, the fds of the attached services and, while it
// takes turns, the queue workers' TUN queues and sockets, and moves packets in
// bursts.
//
// Workers (options.workers = N > 1): the TUN device gets N queues
// (IFF_MULTI_QUEUE) and the UDP port N sockets (SO_REUSEPORT). The pipeline's
// thread serves the first of each and is the handshake context; N - 1
// QueueWorker threads (queue_worker.h) serve the others, running the Device's
// data path at once (device.h). The kernel spreads flows over the queues and
// peers' endpoints over the sockets, but keeps one flow on one queue: so a
// thread whose own queue is quiet takes turns on a busy one, in order
// (queue_worker.h), while the machine has a core for every runnable thread,
// and N - 1 AEAD helper threads take pieces of a worker's bursts, in order,
// while other workers sleep and a core is spare (crypto/aead_parallel.h): one
// TCP flow gets more than one core. Without multi-queue TUN, the pipeline's
// thread alone has a queue and the helpers share each of its bursts. It
// returns when stop() is called, when a watched fd's callback says so, when
// the interface is deleted, or when a service says it is gone (the UAPI socket
// file was removed, as wireguard-go does).
//
// Threads: as data_path.h says; post() wakes the loop with an eventfd.
//
// Logging goes through the sink in the options (faradayd's log), so nothing
// here depends on the daemon.
#pragma once

#include <fmt/core.h>
#include <poll.h>

#include <array>
#include <atomic>
#include <boost/lockfree/spsc_queue.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "crypto/aead_batch.h"
#include "crypto/aead_parallel.h"
#include "dataplane/config.h"
#include "dataplane/data_path.h"
#include "dataplane/device.h"
#include "dataplane/device_config.h"
#include "dataplane/queue_worker.h"
#include "dataplane/tun_port.h"
#include "dataplane/udp_port.h"
#include "result.h"

namespace faraday::dataplane {

struct PipelineOptions {
  std::string ifname;
  uint32_t mtu = 1420;
  uint16_t listen_port = 0;  // 0: any free port (wg set ... listen-port changes it)
  std::string aead_backend;  // empty: the fastest that passes its self-test
  // Data-path threads: the pipeline's and workers - 1 QueueWorkers, a TUN queue
  // and a UDP socket each, taking turns on each other's queues while their own
  // are quiet (queue_worker.h), and workers - 1 AEAD helpers that share a busy
  // worker's bursts in order while others sleep (crypto/aead_parallel.h; without
  // multi-queue TUN, only the helpers). 0: as many as the CPUs this process
  // may run on (sched_getaffinity), at most crypto::kMaxLanes.
  unsigned workers = 0;
  uint32_t stats_interval_s = 10;  // drop counters logged at most this often, when they change
  LogSink log;                     // empty: no log lines
};

class Pipeline : public DataPath {
 public:
  // Creates the TUN interface and the UDP socket; an error message naming
  // what failed otherwise.
  static Result<std::unique_ptr<Pipeline>> open(const PipelineOptions& options);
  ~Pipeline() override;
  Pipeline(const Pipeline&) = delete;
  Pipeline& operator=(const Pipeline&) = delete;

  void watch(int fd, std::function<bool()> on_ready) override;
  void attach(std::unique_ptr<PollService> service) override;
  Exit run() override;
  bool post(Command command) override;
  void stop() override;
  Result<void, ApplyError> apply(const ConfigUpdate& req, bool log_peers = true) override;
  DeviceState state() const override;
  void log_stats(bool force) override;
  // "mtu 1420, UDP port 51820 (IPv4+IPv6), UDP GSO+GRO, TUN offloads TSO4/6+USO,
  // checksum offload, AEAD sodium, 2 workers (a TUN queue and a UDP socket each,
  // and turns on the others' bursts while their own are quiet; AEAD helpers take
  // pieces of a busy worker's bursts while a core is spare)".
  std::string summary() const override;
  // "ipsec-mb (avx512): 21.3 Gbit/s vs sodium 4.9 Gbit/s in a 5 ms start-up
  // measurement each; self-tests passed".
  const std::string& aead_choice() const override { return aead_choice_; }
  const std::string& ifname() const override { return tun_->name(); }
  uint16_t listen_port() const { return udp_->port(); }
  const Device& device() const override { return *dev_; }
  Status set_containers(std::optional<Prefix> prefix,
                        std::vector<std::shared_ptr<ContainerTap>> taps) override;
  // The cores the data path runs on (options.workers, with 0 resolved): queue
  // workers, or AEAD lanes when the TUN has one queue.
  unsigned workers() const {
    return queue_workers_.empty() ? aead_->lanes()
                                  : static_cast<unsigned>(queue_workers_.size() + 1);
  }

 private:
  explicit Pipeline(const PipelineOptions& options) : options_(options) {}
  Status setup();
  Status open_ports(unsigned workers, crypto::AeadChoice& aead);
  void start_workers();
  void stop_workers();
  template <typename... Args>
  void log(LogLevel level, fmt::format_string<Args...> format, Args&&... args) const {
    if (options_.log) options_.log(level, fmt::format(format, std::forward<Args>(args)...));
  }
  bool poll_once(std::vector<pollfd>& fds, Exit& exit);
  bool check_alive(Exit& exit);
  void on_wake();
  void flush_outbox();
  void apply_fwmark();
  // A container's packets for the mesh: sealed, sent under the own queue's turn.
  void container_to_mesh(std::span<Packet> pkts);

  PipelineOptions options_;
  SystemClock clock_;
  std::unique_ptr<crypto::ParallelAead> aead_;
  std::string aead_choice_;
  std::unique_ptr<Device> dev_;
  std::optional<TunPort> tun_;
  std::optional<UdpPort> udp_;
  std::vector<std::unique_ptr<PollService>> services_;
  std::vector<std::unique_ptr<QueueWorker>> queue_workers_;
  bool workers_running_ = false;
  Nanos last_report_ = 0;  // when Device::service() last found something
  uint32_t fwmark_ = 0;
  CommandInbox inbox_;
  std::vector<std::pair<int, std::function<bool()>>> watched_;
  std::vector<QueueTurns> turns_;    // one per queue; outlives the workers' use
  std::vector<KernelQueue> queues_;  // queue 0 is this thread's
  std::optional<QueueBursts> bursts_;
  Counters logged_;
  Nanos last_stats_ = 0;
  Nanos last_check_ = 0;
  std::optional<ContainerPorts> containers_;  // made with the ports
  std::array<Verdict, kBurstSize> tap_verdicts_{};
  std::array<Packet, kBurstSize> tap_out_{};
};

}  // namespace faraday::dataplane
