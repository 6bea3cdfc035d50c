// datapath.h: one WireGuard interface's data path on kernel sockets: the TUN
// device, a UDP socket, the WireGuard core (dataplane::Device) between them,
// and the cross-platform UAPI at /var/run/wireguard/IFNAME.sock for wg(8).
// `faradayd standalone` runs it on its main thread; `faradayd cluster` runs it
// on a thread of its own and programs it from the control thread.
//
// The loop (run()) polls the TUN device, the UDP socket, the UAPI socket, a
// wake-up eventfd and any fd the owner watches, and moves packets in bursts.
// It returns when stop() is called, when a watched fd's callback says so, when
// the interface is deleted, or when the UAPI socket file is removed (as
// wireguard-go does).
//
// Threads: run() and every other method run on the data path's thread, except
// post() and stop(), which one other thread (the control thread) may call.
// post() hands a closure to the data path through a single-producer,
// single-consumer lock-free ring and wakes the loop with an eventfd; the loop
// runs queued closures between bursts, so the peer table changes while no
// packet is in flight and the fast path never takes a lock.
#pragma once

#include <poll.h>

#include <array>
#include <atomic>
#include <boost/lockfree/spsc_queue.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "control/uapi.h"
#include "crypto/aead_batch.h"
#include "dataplane/device.h"
#include "dataplane/tun_port.h"
#include "dataplane/udp_port.h"

namespace faraday::control {

struct DataPathOptions {
  std::string ifname;
  uint32_t mtu = 1420;
  uint16_t listen_port = 0;        // 0: any free port (wg set ... listen-port changes it)
  std::string aead_backend;        // empty: the fastest that passes its self-test
  uint32_t stats_interval_s = 10;  // drop counters logged at most this often, when they change
};

class DataPath {
 public:
  enum class Exit { kStopped, kInterfaceGone, kSocketGone, kError };
  using Command = std::function<void(DataPath&)>;

  // Creates the TUN interface, the UDP socket and the UAPI server; an error
  // message naming what failed otherwise.
  static std::variant<std::unique_ptr<DataPath>, std::string> open(const DataPathOptions& options);
  ~DataPath();
  DataPath(const DataPath&) = delete;
  DataPath& operator=(const DataPath&) = delete;

  // Calls on_ready() on the loop's thread when fd is readable; on_ready returns
  // false to stop the loop. Before run().
  void watch(int fd, std::function<bool()> on_ready);
  Exit run();

  // From the producer thread: run `command` on the data path's thread soon.
  // False when the ring is full (the caller keeps it and tries again).
  bool post(Command command);
  // From any thread: make run() return kStopped.
  void stop();

  // On the data path's thread (the UAPI server and posted closures use them).
  // Applies a wg(8) set request. `log_peers` says whether peer changes are logged
  // here (requests through the UAPI) or by the caller, which knows the peers'
  // names (the control thread).
  std::optional<uapi::Error> apply(const uapi::SetRequest& req, bool log_peers = true);
  uapi::DeviceState state() const;
  void log_stats(bool force);
  const std::string& ifname() const { return tun_->name(); }
  uint16_t listen_port() const { return udp_->port(); }
  const dataplane::Device& device() const { return *dev_; }

 private:
  explicit DataPath(const DataPathOptions& options) : options_(options) {}
  bool setup(std::string* error);
  void on_tun();
  void on_udp();
  void on_wake();
  void flush_outbox();
  void send_udp(std::span<dataplane::Packet> pkts);
  void write_tun(std::span<dataplane::Packet> pkts);
  void apply_fwmark();

  DataPathOptions options_;
  dataplane::SystemClock clock_;
  std::unique_ptr<crypto::AeadBackend> aead_;
  std::unique_ptr<dataplane::Device> dev_;
  std::optional<dataplane::TunPort> tun_;
  std::optional<dataplane::UdpPort> udp_;
  std::unique_ptr<uapi::Server> uapi_;
  uint32_t fwmark_ = 0;
  int wake_fd_ = -1;
  std::atomic<bool> stop_{false};
  boost::lockfree::spsc_queue<Command*, boost::lockfree::capacity<1024>> commands_;
  std::vector<std::pair<int, std::function<bool()>>> watched_;
  dataplane::PacketArena tun_rx_{dataplane::kBurstSize};
  dataplane::PacketArena udp_rx_{dataplane::kBurstSize};
  std::array<dataplane::Verdict, dataplane::kBurstSize> verdicts_{};
  std::array<dataplane::Packet, dataplane::kBurstSize> out_{};
  dataplane::Counters logged_;
  dataplane::Nanos last_stats_ = 0;
};

}  // namespace faraday::control
