// data_path.h: what the daemon sees of one WireGuard interface's data path,
// whichever ports move its packets: kernel sockets and a TUN device
// (pipeline.h), or DPDK ports that faradayd drives itself (dpdk_data_path.h).
// `faradayd standalone` runs one on its main thread; `faradayd cluster` runs
// one on a thread of its own and programs it from the control thread.
//
// Threads: run() and every other method run on the data path's thread, except
// post() and stop(), which one other thread (the control thread) may call.
// post() hands a closure to the data path through a single-producer,
// single-consumer lock-free ring and wakes its loop; the loop runs queued
// closures between bursts, so the peer table changes while no packet is in
// flight and the fast path never takes a lock.
#pragma once

#include <poll.h>

#include <atomic>
#include <boost/lockfree/spsc_queue.hpp>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "dataplane/container_port.h"
#include "dataplane/device.h"
#include "dataplane/device_config.h"
#include "result.h"

namespace faraday::dataplane {

// Something else the loop serves on its thread between bursts (faradayd's UAPI
// server). All calls come from the data path's thread.
class PollService {
 public:
  virtual ~PollService() = default;
  virtual void append_pollfds(std::vector<pollfd>& fds) const = 0;
  // fds: exactly the entries append_pollfds() added, with poll's revents.
  virtual void handle(std::span<const pollfd> fds) = 0;
  // Asked about once a second; false shuts the loop down (Exit::kSocketGone).
  virtual bool still_present() = 0;
  // With the data path's own counters (log_stats): force = SIGUSR1 or exit.
  virtual void log_stats(bool force) = 0;
};

class DataPath {
 public:
  enum class Exit { kStopped, kInterfaceGone, kSocketGone, kError };
  using Command = std::function<void(DataPath&)>;

  virtual ~DataPath() = default;

  // Calls on_ready() on the loop's thread when fd is readable; on_ready returns
  // false to stop the loop. Before run().
  virtual void watch(int fd, std::function<bool()> on_ready) = 0;
  // Serves service from the loop until the data path is destroyed. Before run().
  virtual void attach(std::unique_ptr<PollService> service) = 0;
  // Moves packets until stop(), a watched fd's callback or a service says so,
  // or the interface is deleted.
  virtual Exit run() = 0;

  // From the producer thread: run `command` on the data path's thread soon.
  // False when the ring is full (the caller keeps it and tries again).
  virtual bool post(Command command) = 0;
  // From any thread: make run() return kStopped.
  virtual void stop() = 0;

  // On the data path's thread (services and posted closures use them).
  // Applies a configuration change. `log_peers` says whether peer changes are
  // logged here (requests through the UAPI) or by the caller, which knows the
  // peers' names (the control thread).
  virtual Result<void, ApplyError> apply(const ConfigUpdate& req, bool log_peers = true) = 0;
  virtual DeviceState state() const = 0;
  // The "stats:" line when forced (SIGUSR1, exit) or when drops changed, at
  // most every stats interval; forced, the ports' counters and the services' too.
  virtual void log_stats(bool force) = 0;
  // What the interface is made of, for the start-up line.
  virtual std::string summary() const = 0;
  // Why this AEAD backend, for the start-up log.
  virtual const std::string& aead_choice() const = 0;
  virtual const std::string& ifname() const = 0;
  virtual const Device& device() const = 0;

  // The node's container prefix and every container's interface
  // (container_port.h), replacing what was set before: packets to the prefix
  // go to their container's TAP (or are dropped when none holds the address),
  // and what the containers send goes into the mesh. An error on a data path
  // that cannot serve containers.
  virtual Status set_containers(std::optional<Prefix> prefix,
                                std::vector<std::shared_ptr<ContainerTap>> taps) {
    (void)prefix;
    (void)taps;
    return Error{"this data path does not serve containers' TAP interfaces"};
  }
};

// What a data path's loop is woken for: the commands posted to it (one
// producer, the control thread; one consumer, the data path's thread), stop(),
// and wake() from any thread (the Device's workers handing something over).
// Its eventfd is among the fds the loop polls.
class CommandInbox {
 public:
  CommandInbox();   // fd() < 0 if the eventfd could not be made (error() says why)
  ~CommandInbox();  // commands never run are dropped
  CommandInbox(const CommandInbox&) = delete;
  CommandInbox& operator=(const CommandInbox&) = delete;

  int fd() const { return fd_; }
  int error() const { return error_; }  // eventfd's errno when fd() < 0
  // Producer: false when the ring is full (the caller keeps the command).
  bool post(DataPath::Command command);
  void stop();
  bool stopping() const { return stop_.load(std::memory_order_acquire); }
  void wake();
  // For Device::set_wake: wake(inbox).
  static void wake(void* inbox) { static_cast<CommandInbox*>(inbox)->wake(); }
  // Consumer, when fd() was readable: clears it and runs every queued command on dp.
  void run(DataPath& dp);

 private:
  int fd_ = -1;
  int error_ = 0;
  std::atomic<bool> stop_{false};
  boost::lockfree::spsc_queue<DataPath::Command*, boost::lockfree::capacity<1024>> commands_;
};

}  // namespace faraday::dataplane
