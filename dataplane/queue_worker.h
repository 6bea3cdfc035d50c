// queue_worker.h: the data-path threads of a Pipeline (pipeline.h) on the
// kernel's queues: each of N TUN queues and N UDP sockets of the interface's
// reuseport group is one KernelQueue. The pipeline's own thread is the
// handshake context and the first queue's worker; QueueWorker threads are the
// others, one per queue, each with its own Worker (worker.h) and AEAD backend.
//
// QueueBursts is what each of those threads moves: bursts of its own queue,
// run to completion, and, when its own queue gave nothing, turns on the
// others' (turns.h). The kernel keeps one flow on one TUN queue and one peer
// on one socket; a thread whose own queue is quiet reads that queue's next
// burst, seals or opens it at the same time as the thread that read the burst
// before, and sends it on that queue once the burst before has gone. So one
// tunnel, one TCP flow even, uses every worker and still leaves in order.
// What a port keeps between reads (the rest of a TSO super-packet, GRO
// segments) is touched only under that queue's read turn; its sends only under
// the ticket; its counters are Counters, read on any thread.
//
// A QueueWorker's loop polls its TUN queue, its socket, a stop eventfd and,
// while it takes turns, the other queues' fds (while it does not, it wakes
// now and then to ask again: kTurnsRecheckMinMs), offline for RCU while it sleeps
// (rcu.h), and idle for its AEAD, so other workers' bursts may use its core
// meanwhile (crypto/aead_parallel.h); after each pass it reports a quiescent
// state. It
// never blocks on the control thread: what it hands over goes through its
// Worker's rings. A thread waits for its ticket offline, since the thread
// before it may be the handshake context in rcu_synchronize.
//
// Threads: the constructor, set_queues(), start(), stop(), replace_udp() and
// the destructor run on the pipeline's thread (replace_udp() with every
// QueueWorker stopped: any of them may send on any socket); counters() and
// turns_taken() on any thread; the rest on the worker's thread.
#pragma once

#include <poll.h>

#include <atomic>
#include <memory>
#include <thread>
#include <utility>
#include <vector>

#include "crypto/aead_parallel.h"
#include "dataplane/container_port.h"
#include "dataplane/device.h"
#include "dataplane/rcu.h"
#include "dataplane/tun_port.h"
#include "dataplane/turns.h"
#include "dataplane/udp_port.h"

namespace faraday::dataplane {

// Sends (writes) all of pkts, waiting a little for room when the socket (TUN
// queue) is full; what still does not fit is dropped and counted by the port.
void send_all(UdpPort& udp, std::span<Packet> pkts);
void write_all(TunPort& tun, std::span<Packet> pkts);

// While a thread takes no turns (the machine is crowded), it sleeps at most
// this long before it asks again, so turns resume when the machine is free:
// 1 ms (the age of the kernel's count it asks, crypto::kMachineCheck) after a
// pass that took turns, twice as long after each one that did not, up to
// kTurnsRecheckMaxMs. A moment's crowd (a kernel thread, a cron job) then
// costs a millisecond of turns, and a machine that stays crowded a wake-up
// every kTurnsRecheckMaxMs per idle worker.
constexpr int kTurnsRecheckMinMs = 1;
constexpr int kTurnsRecheckMaxMs = 16;

// One queue of a Pipeline as every data-path thread sees it.
struct KernelQueue {
  TunPort* tun = nullptr;
  UdpPort* udp = nullptr;
  QueueTurns* turns = nullptr;  // inner: the TUN's reads; underlay: the socket's
};

// The bursts one data-path thread moves; see the top of this file.
class QueueBursts {
 public:
  // worker: the Device's path this thread runs; null on the handshake context,
  // which also sends the Device's outbox. machine: asked whether the machine has
  // a core for turns (crypto::AeadHelpers::machine_uncrowded); null: always.
  QueueBursts(Device& dev, Worker* worker, uint32_t mtu, crypto::AeadHelpers* machine);

  // Before the first burst: every queue of the pipeline and the index of this
  // thread's own (they outlive this object).
  void set_queues(std::span<const KernelQueue> queues, size_t own);
  // This thread's RCU reader while it runs (none on the handshake context).
  void set_rcu(RcuReader* rcu) { rcu_ = rcu; }
  const KernelQueue& own() const { return queues_[own_]; }
  size_t own_index() const { return own_; }
  size_t queues() const { return queues_.size(); }

  // Bursts read from queue q's TUN, sealed and sent on q's socket, while each
  // read fills a burst (at most kRounds) and no other thread is reading it.
  // The handshake context sends its outbox with them, first: handshakes may
  // carry what the data waits for. Returns the packets read.
  //
  // Two bursts may be in flight: when the burst just sealed must wait for one
  // another thread read before it, this thread reads and seals the next one
  // meanwhile, and sends both when their turns come. So a core that runs the
  // AEAD faster than another (vCPUs of a shared machine differ) is not held to
  // the slower one's pace. Nothing is left in flight when the call returns: a
  // thread never sleeps holding a ticket.
  size_t tun_to_udp(size_t q) { return move(q, Way::kSeal); }
  // Datagrams received on queue q's socket, opened and written to q's TUN, as
  // tun_to_udp. The handshake context sends its outbox after each burst.
  size_t udp_to_tun(size_t q) { return move(q, Way::kOpen); }
  // The handshake context only: the outbox, then `more` (datagrams sealed
  // outside the queues' bursts: the containers'), sent on its own queue's
  // socket under that queue's turn.
  void send_outbox(std::span<Packet> more = {});
  // Where the pipeline publishes its containers' table (container_port.h):
  // decrypted packets to the container prefix go to their TAP, under the
  // burst's turn. Before the first burst; null: none.
  void set_containers(const std::atomic<const ContainerTable*>* table) { containers_ = table; }
  // Decrypted packets to a prefix address no container holds (dropped).
  uint64_t container_unknown() const { return container_unknown_; }

  // A pass of a data-path thread's loop: held(), poll() with the fds of its
  // own queue and append_others', its own queue's bursts, then take_turns().
  //
  // First in a pass: whether a queue's port holds packets that poll() does not
  // see, looked at under its turn. Its own queue is always looked at; another
  // queue while this pass takes turns (while the machine has a core for every
  // runnable thread: otherwise each thread keeps to its own queue, as the
  // threads before it would only wait for cores the machine does not have),
  // and whenever this thread's last read of it left packets there (they are
  // this thread's to move: the owner may be asleep). A queue another thread is
  // reading is that thread's to look at, after its read.
  bool held();
  // The other queues' TUN and socket fds (two each, in queue order), when this
  // pass takes turns.
  void append_others(std::vector<pollfd>& fds) const;
  // Turns on the other queues whose fds (as append_others put them) are
  // readable, or on all when held; and, turns or not, on those whose packets
  // this thread left held. Returns the packets read.
  size_t take_turns(std::span<const pollfd> others, bool held);
  // After held(): how long this pass may sleep in poll() at most (-1: no
  // limit), so that a thread the crowd kept from taking turns asks again
  // (kTurnsRecheckMinMs).
  int sleep_limit_ms();
  // Bursts read from another thread's queue.
  uint64_t turns_taken() const { return turns_taken_; }

 private:
  static constexpr int kRounds = 8;
  enum class Way { kSeal, kOpen };  // TUN -> socket, socket -> TUN
  // One burst's buffers, and its ticket while it is in flight.
  struct Flight {
    Flight(size_t count, uint32_t slot) : rx(count, slot) {}
    PacketArena rx;
    std::array<Packet, kBurstSize> out{};  // the passed packets, at the front
    size_t passed = 0;
    uint64_t ticket = 0;
    bool busy = false;  // read, not yet sent
  };

  size_t move(size_t q, Way way);
  // Waits (offline) for the flight's turn, sends it and passes the turn on.
  void land(const KernelQueue& k, Way way, Turns& turns, Flight& f);
  void send_outbox_on(UdpPort& udp);
  // Whether the port of that way holds packets, looked at under its turn;
  // false while another thread reads it (it looks after its read).
  bool holds(const KernelQueue& k, Way way);
  // The flight's packets to containers written to their TAPs, the rest kept.
  void divert_to_containers(Flight& f);

  Device& dev_;
  Worker* worker_;
  crypto::AeadHelpers* machine_;
  bool turns_ = false;                   // this pass takes turns (held())
  int recheck_ms_ = kTurnsRecheckMinMs;  // the next sleep_limit_ms() without turns
  RcuReader* rcu_ = nullptr;
  std::span<const KernelQueue> queues_;
  size_t own_ = 0;
  // Per queue: the ports this thread's last read of it left packets in.
  static constexpr uint8_t kLeftTun = 1;
  static constexpr uint8_t kLeftUdp = 2;
  std::vector<uint8_t> left_;
  std::array<Flight, 2> seal_;
  std::array<Flight, 2> open_;  // full-size slots: any datagram reaches the core
  std::array<Verdict, kBurstSize> verdicts_{};
  Counter turns_taken_;
  const std::atomic<const ContainerTable*>* containers_ = nullptr;
  Counter container_unknown_;
};

class QueueWorker {
 public:
  QueueWorker(Device& dev, std::unique_ptr<crypto::ParallelAead> aead, TunPort tun, UdpPort udp,
              uint32_t mtu);
  ~QueueWorker();
  QueueWorker(const QueueWorker&) = delete;
  QueueWorker& operator=(const QueueWorker&) = delete;

  // This worker's queue, for the pipeline's list (turns: null until set_queues).
  KernelQueue queue() { return {&tun_, &udp_, nullptr}; }
  // Before start(): every queue, this worker's at index own.
  void set_queues(std::span<const KernelQueue> queues, size_t own) {
    bursts_.set_queues(queues, own);
  }
  void set_containers(const std::atomic<const ContainerTable*>* table) {
    bursts_.set_containers(table);
  }
  uint64_t container_unknown() const { return bursts_.container_unknown(); }
  void start();
  void stop();  // joins the thread; start() may follow
  // With the thread stopped: a new socket (the listen port changed).
  void replace_udp(UdpPort udp);
  int udp_fd() const { return udp_.fd(); }
  // The ports' counters, whichever thread moved the packets.
  std::pair<TunPortCounters, UdpPortCounters> counters() const {
    return {tun_.counters(), udp_.counters()};
  }
  uint64_t turns_taken() const { return bursts_.turns_taken(); }

 private:
  void run();

  std::unique_ptr<crypto::ParallelAead> aead_;  // idle while the loop sleeps
  TunPort tun_;
  UdpPort udp_;
  QueueBursts bursts_;
  int stop_fd_ = -1;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace faraday::dataplane
