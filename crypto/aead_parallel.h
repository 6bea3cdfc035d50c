// aead_parallel.h: one burst's AEAD over several cores, in order.
//
// ParallelAead is the AeadBackend of one data-path thread (a caller): its own
// backend instance (lane 0) plus a share of AeadHelpers, a set of helper threads,
// each with its own instance of the same backend type (a backend object is not
// thread-safe: the ipsec-mb one owns a job manager). Several callers may share one
// AeadHelpers: each queue worker of a pipeline has its own ParallelAead over the
// pipeline's helpers.
//
// seal_burst and open_burst cut the burst into contiguous pieces of about equal
// bytes; the caller and any helper take pieces until none is left, and the call
// returns only when every piece is done. The caller then sees the whole burst
// finished, exactly as with one backend: jobs keep their order, so packets of one
// peer leave in the order they came, and each job has its own ok flag. This is how
// one flow, which the kernel keeps on one TUN queue and one socket, gets more than
// one core.
//
// A burst is shared only while a core is spare: callers say when they sleep
// (set_idle), and a burst is cut only while the callers at work are no more than
// the helpers, and while the kernel's count of runnable threads, less the awake
// helpers, is under the number of CPUs this process may use. A core this process does not use may
// still be busy: with iperf3 and a second daemon on this 2-vCPU machine, sharing
// made one TCP flow through 2 workers 0.8x as fast as through 1 until the kernel's
// count was asked. With every queue worker busy, each runs its own bursts and the
// helpers sleep; with one flow on one queue, that queue's worker borrows the idle
// workers' cores through the helpers. A burst smaller than kParallelMinBytes runs
// on the caller alone: handing it off costs more than it saves.
//
// The caller takes pieces too, so a helper slow to wake (its core busy with
// something else) costs only the pieces it did not take.
//
// No lock and no allocation per burst: the caller publishes the burst (its pieces'
// bounds, then one 64-bit claim word: burst number, piece count, next piece) and
// bumps the helpers' post number; helpers look at every attached caller and claim
// pieces by compare-and-swap on its claim word, and count the pieces they finish
// on the caller's own counter. An idle helper spins for kSpinWait, then sleeps on a
// futex (FutexWord), so an idle daemon burns no CPU; the caller likewise spins,
// then sleeps, while it waits for a piece a helper took. A burst wakes only as
// many sleeping helpers as there are sleeping callers' cores.
//
// Threads: helpers start in AeadHelpers' constructor and are joined by its
// destructor (when the last ParallelAead that shares it is gone); they block every
// signal, so signals go to the threads that expect them. Each ParallelAead is used
// by one thread at a time (its caller's), like any backend; any number of them may
// run bursts at once on one AeadHelpers.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "crypto/aead_batch.h"
#include "result.h"

namespace faraday::crypto {

// Below this many bytes (message lengths plus kJobCostBytes per job) a burst is not
// worth handing to another core. From a seal_burst sweep, 1 vs 2 lanes, ipsec-mb
// (avx512) on a shared 2-vCPU machine: 32 x 64 B (10 KiB of work) was 0.77x on two
// lanes, 16 x 512 B (12 KiB) 1.07x, 64 x 64 B (20 KiB) 1.18x (bench/README.md).
constexpr size_t kParallelMinBytes = 12 * 1024;
// What one message costs beyond its bytes (nonce, Poly1305 finish, job set-up), in
// bytes of work, when balancing pieces: 64-byte messages are not free.
constexpr size_t kJobCostBytes = 256;
// Pieces per burst: about kPiecesPerLane per lane, none below kMinPieceBytes, at most
// kMaxPieces. More pieces than lanes let a late helper join in, the caller absorb
// the pieces of a helper that never woke, and a fast core take more pieces than a
// slow one (on this 2-vCPU machine one vCPU runs the AEAD at 65-85 % of the
// other's speed). seal_burst of 64 messages, 1 vs 2 lanes, ipsec-mb, 2 runs: with
// 2 pieces per lane 1.06-1.39x, with 4 pieces 1.22-1.31x, with 8 1.04-1.18x.
constexpr size_t kPiecesPerLane = 4;
constexpr size_t kMinPieceBytes = 2 * 1024;
constexpr size_t kMaxPieces = 256;
// A shared burst pays when a helper took a piece and the caller, its own pieces
// done, waited no longer than two of them took it (plus kWaitSlack). When it does
// not pay (no helper came, or one came late, or was preempted mid-piece while the
// caller waited), the next bursts run alone: 1, then 2, 4... up to
// kMaxBackoffBursts after each such burst in a row (counting only the large
// bursts the pause keeps from being shared).
constexpr uint32_t kMaxBackoffBursts = 4096;
// A pause grows only while verdicts come within this of each other.
constexpr std::chrono::milliseconds kForgetBackoff{100};
// How often callers ask the kernel whether the machine has a core to spare.
constexpr std::chrono::nanoseconds kMachineCheck = std::chrono::milliseconds(1);
// The machine counts as crowded once the counts (kMachineCheck apart, at the
// least) that found more threads runnable than CPUs outnumber those that did
// not by kCrowdedChecks, counted up to twice that: a moment's crowd (a kernel
// thread woke) is not a crowded machine, and a crowded machine with a moment's
// room is still crowded.
constexpr unsigned kCrowdedChecks = 4;
constexpr std::chrono::nanoseconds kWaitSlack = std::chrono::microseconds(2);
// How long an idle helper (or the caller waiting for one) spins before sleeping.
constexpr std::chrono::microseconds kSpinWait{50};
// The most lanes a ParallelAead has (a `workers` setting above this is refused).
constexpr unsigned kMaxLanes = 64;

class ParallelAead;

// A 32-bit word threads sleep on until it changes, with its own count of
// sleepers, so a change wakes (a futex syscall) only when someone sleeps on this
// very word. std::atomic::wait/notify (libstdc++ 12) count sleepers per bucket of
// a 16-entry table hashed from the address, and every 64-byte-aligned address
// falls in bucket 0: one helper asleep anywhere made every notify of every such
// word a syscall (half a million a second in dataplane_bench).
struct FutexWord {
  static_assert(sizeof(std::atomic<uint32_t>) == 4 && std::atomic<uint32_t>::is_always_lock_free,
                "the futex syscall takes the address of a plain 32-bit word");
  std::atomic<uint32_t> value{0};
  std::atomic<uint32_t> sleepers{0};
  // Adds `n`, wakes up to `wake` sleepers (if any) and returns the new value.
  uint32_t add(uint32_t n, int wake);
  // Returns once value is no longer `old` (acquire): spins for kSpinWait, checking
  // the clock every few dozen pauses, then sleeps on the futex.
  uint32_t await_change(uint32_t old);
};

// How callers decide to share a burst. A daemon wants both; a benchmark or test
// that owns the machine's cores may turn them off.
struct SharingOptions {
  bool watch_machine = true;  // ask the kernel whether a core is spare (machine_spare)
  bool back_off = true;       // pause after a shared burst that did not pay (judge)
};

// The helper threads that callers' ParallelAeads share; see the top of this file.
class AeadHelpers {
 public:
  // One thread per backend (none is allowed: then every burst runs inline).
  explicit AeadHelpers(std::vector<std::unique_ptr<AeadBackend>> backends,
                       SharingOptions options = SharingOptions());
  ~AeadHelpers();
  AeadHelpers(const AeadHelpers&) = delete;
  AeadHelpers& operator=(const AeadHelpers&) = delete;

  size_t count() const { return backends_.size(); }
  // Callers now attached and not idle.
  uint32_t busy() const { return busy_.load(std::memory_order_relaxed); }
  // No more threads runnable than the CPUs this process may use (the caller
  // among them, awake helpers not), by the kernel's count at most
  // kMachineCheck old, mostly (kCrowdedChecks). True when the count cannot be
  // read or is not watched. Queue workers take turns on
  // each other's queues only then (dataplane/queue_worker.h): a thread that waits for a core holds
  // up every turn after its own.
  bool machine_uncrowded();

 private:
  friend class ParallelAead;
  // The most callers attached at once.
  static constexpr size_t kMaxCallers = kMaxLanes;

  bool attach(ParallelAead* caller);
  // Returns once no helper can still be looking at the caller.
  void detach(ParallelAead* caller);
  // How many helpers a caller at work may use now: as many as there are cores
  // whose callers sleep (helpers + 1 - busy callers, it among them), and none
  // unless the machine has a core that no runnable thread but an awake helper of
  // ours wants (machine_spare).
  size_t spare() {
    const size_t busy_now = busy();
    if (busy_now > count()) return 0;
    return machine_spare() ? std::min(count(), count() + 1 - busy_now) : 0;
  }
  // From the kernel's count of runnable threads (runnable()); true when it
  // cannot be read.
  bool machine_spare();
  // The kernel's count of runnable threads (/proc/loadavg), read at most every
  // kMachineCheck; 0 when it cannot be read or is not watched.
  unsigned runnable();
  // Helper threads not asleep on the futex (spinning, or at work).
  unsigned awake_helpers() const;
  // A burst is up for claims: wakes up to `helpers` sleeping helpers.
  void post(uint32_t helpers);
  void helper(AeadBackend& backend);

  std::vector<std::unique_ptr<AeadBackend>> backends_;
  std::vector<std::thread> threads_;
  std::array<std::atomic<ParallelAead*>, kMaxCallers> callers_{};
  alignas(64) FutexWord posted_;                   // bumped per shared burst; helpers wait on it
  alignas(64) std::atomic<uint32_t> scanning_{0};  // helpers now looking at callers_
  alignas(64) std::atomic<uint32_t> busy_{0};
  std::atomic<bool> stopping_{false};
  SharingOptions options_;
  int loadavg_fd_ = -1;
  unsigned cpus_ = 1;
  alignas(64) std::atomic<int64_t> next_check_{0};  // steady clock, ns
  std::atomic<unsigned> runnable_{0};
  // Up one (to 2 * kCrowdedChecks) for each count that finds the machine
  // crowded, down one for each that does not.
  std::atomic<unsigned> crowd_{0};
};

class ParallelAead final : public AeadBackend {
 public:
  // lanes[0] runs on the calling thread, the others on helper threads of their own,
  // which share every large burst: they neither watch the machine nor back off
  // (SharingOptions). Not empty; at most kMaxLanes; all of one type.
  explicit ParallelAead(std::vector<std::unique_ptr<AeadBackend>> lanes);
  // `own` runs on the calling thread; `helpers` (may be shared) take pieces while a
  // core is spare. At most AeadHelpers::kMaxCallers callers per AeadHelpers.
  ParallelAead(std::unique_ptr<AeadBackend> own, std::shared_ptr<AeadHelpers> helpers);
  ~ParallelAead() override;
  ParallelAead(const ParallelAead&) = delete;
  ParallelAead& operator=(const ParallelAead&) = delete;

  const char* name() const override { return own_->name(); }
  // "ipsec-mb (avx512) x2 lanes".
  std::string describe() const override;
  void seal_burst(std::span<AeadJob> jobs) override { run(jobs, true); }
  void open_burst(std::span<AeadJob> jobs) override { run(jobs, false); }
  // The caller and the helpers it may use.
  unsigned lanes() const { return 1 + static_cast<unsigned>(helpers_ ? helpers_->count() : 0); }
  const std::shared_ptr<AeadHelpers>& helpers() const { return helpers_; }
  // The caller's thread: true before it sleeps (its core is spare), false when it
  // wakes. A new ParallelAead counts as busy.
  void set_idle(bool idle);
  // The counters below may be read on any thread.
  // Shared bursts that did not pay (counted, and followed by a pause).
  uint64_t backoffs() const { return backoffs_.load(std::memory_order_relaxed); }
  // Bursts handed to the helpers.
  uint64_t shared_bursts() const { return shared_.load(std::memory_order_relaxed); }

 private:
  friend class AeadHelpers;
  void run(std::span<AeadJob> jobs, bool seal);
  void cut(std::span<AeadJob> jobs, size_t total, size_t pieces);
  // Claims and runs pieces of the burst in hand on `backend` until none is left;
  // returns how many it ran.
  uint32_t work(AeadBackend& backend);
  // After a shared burst: whether sharing paid (see kMaxBackoffBursts).
  void judge(uint32_t own, uint32_t pieces, std::chrono::nanoseconds working,
             std::chrono::nanoseconds waiting, std::chrono::steady_clock::time_point now);
  bool claim(uint32_t burst, uint32_t& piece);

  std::unique_ptr<AeadBackend> own_;
  std::shared_ptr<AeadHelpers> helpers_;  // null when attach failed (too many callers)
  bool idle_ = false;
  uint32_t skip_ = 0;     // large bursts still to run alone
  uint32_t backoff_ = 0;  // the last pause, in bursts; 0 while sharing pays
  bool probe_ = false;    // the next shared burst ends a pause
  std::chrono::steady_clock::time_point last_verdict_{};
  // Written by the caller's thread alone (count()), read by any (a log line).
  static void count(std::atomic<uint64_t>& counter, uint64_t n) {
    counter.store(counter.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  std::atomic<uint64_t> backoffs_{0};
  std::atomic<uint64_t> shared_{0};
  // The burst in hand, written by the caller before it publishes claim_ and read by
  // a lane only after it claimed a piece; unchanged until every piece is finished.
  AeadJob* jobs_ = nullptr;
  bool seal_ = false;
  std::vector<size_t> cuts_;  // piece i is jobs [cuts_[i], cuts_[i + 1])
  uint32_t burst_ = 0;        // caller only: the last burst number handed out
  alignas(64) std::atomic<uint64_t> claim_{0};
  alignas(64) FutexWord finished_;  // pieces finished, ever; the caller waits
};

// Makes `lanes` instances with `make` and puts them behind one ParallelAead. An error
// when lanes is 0 or above kMaxLanes, or `make` returns null.
Result<std::unique_ptr<ParallelAead>> make_parallel_aead(
    const std::function<std::unique_ptr<AeadBackend>()>& make, unsigned lanes);

}  // namespace faraday::crypto
