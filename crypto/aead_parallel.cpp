// aead_parallel.cpp: see aead_parallel.h.
#include "crypto/aead_parallel.h"

#include <fcntl.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstdio>
#include <cstring>
#include <string>

namespace faraday::crypto {
namespace {

void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

// The CPUs this process may run on, and the machine has: the kernel's runnable
// count is the whole machine's, so with fewer CPUs allowed (taskset, a cpuset)
// the smaller number errs towards "no core to spare".
unsigned usable_cpus() {
  int cpus = get_nprocs();
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) cpus = std::min(cpus, CPU_COUNT(&set));
  return static_cast<unsigned>(std::max(1, cpus));
}

size_t job_cost(const AeadJob& job) {
  return job.length + kJobCostBytes;
}

// The claim word: burst sequence (high 32 bits), pieces in the burst, next piece.
constexpr uint64_t claim_word(uint32_t burst, uint32_t pieces, uint32_t next) {
  return uint64_t{burst} << 32 | uint64_t{pieces} << 16 | next;
}

}  // namespace

uint32_t FutexWord::add(uint32_t n, int wake) {
  // seq_cst on both words, here and in await_change: either the sleeper sees the
  // new value before it sleeps, or this sees the sleeper.
  const uint32_t now = value.fetch_add(n, std::memory_order_seq_cst) + n;
  if (sleepers.load(std::memory_order_seq_cst) != 0)
    syscall(SYS_futex, &value, FUTEX_WAKE_PRIVATE, wake, nullptr, nullptr, 0);
  return now;
}

uint32_t FutexWord::await_change(uint32_t old) {
  using Clock = std::chrono::steady_clock;
  const Clock::time_point until = Clock::now() + kSpinWait;
  do {
    for (int i = 0; i < 32; ++i) {
      const uint32_t now = value.load(std::memory_order_acquire);
      if (now != old) return now;
      cpu_relax();
    }
  } while (Clock::now() < until);
  for (;;) {
    sleepers.fetch_add(1, std::memory_order_seq_cst);
    uint32_t now = value.load(std::memory_order_seq_cst);
    if (now == old) {
      // Sleeps only if the word still holds `old`; a wake or a signal ends it early.
      syscall(SYS_futex, &value, FUTEX_WAIT_PRIVATE, old, nullptr, nullptr, 0);
      now = value.load(std::memory_order_acquire);
    }
    sleepers.fetch_sub(1, std::memory_order_release);
    if (now != old) return now;
  }
}

AeadHelpers::AeadHelpers(std::vector<std::unique_ptr<AeadBackend>> backends, SharingOptions options)
    : backends_(std::move(backends)),
      options_(options),
      loadavg_fd_(options.watch_machine ? open("/proc/loadavg", O_RDONLY | O_CLOEXEC) : -1),
      cpus_(usable_cpus()) {
  // Helpers take no signals: they inherit a mask that blocks all of them, so a
  // process-directed signal (SIGTERM, SIGUSR1) still goes to a thread that expects
  // it (faradayd's signalfd) instead of killing the process from a helper.
  sigset_t all, before;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &before);
  for (size_t i = 0; i < backends_.size(); ++i) {
    threads_.emplace_back([this, i] { helper(*backends_[i]); });
    const std::string name = "aead-lane" + std::to_string(i + 1);
    pthread_setname_np(threads_.back().native_handle(), name.c_str());
  }
  pthread_sigmask(SIG_SETMASK, &before, nullptr);
}

AeadHelpers::~AeadHelpers() {
  stopping_.store(true, std::memory_order_release);
  posted_.add(1, INT_MAX);
  for (std::thread& t : threads_) t.join();
  if (loadavg_fd_ >= 0) close(loadavg_fd_);
}

unsigned AeadHelpers::runnable() {
  if (loadavg_fd_ < 0) return 0;
  using std::chrono::nanoseconds;
  const int64_t now =
      std::chrono::duration_cast<nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
          .count();
  int64_t next = next_check_.load(std::memory_order_relaxed);
  // One caller reads; the others keep the last answer meanwhile.
  if (now < next || !next_check_.compare_exchange_strong(next, now + kMachineCheck.count(),
                                                         std::memory_order_relaxed))
    return runnable_.load(std::memory_order_relaxed);
  // "0.20 1.30 1.95 2/86 31294": the fourth field is runnable/all threads.
  char text[128];
  const ssize_t n = pread(loadavg_fd_, text, sizeof(text) - 1, 0);
  if (n <= 0) return runnable_.load(std::memory_order_relaxed);
  text[n] = 0;
  unsigned runnable = 0;
  const char* p = text;
  for (int field = 0; field < 3 && p; ++field) {
    p = std::strchr(p, ' ');
    if (p) ++p;
  }
  if (!p || std::sscanf(p, "%u/", &runnable) != 1) return runnable_.load(std::memory_order_relaxed);
  runnable_.store(runnable, std::memory_order_relaxed);
  // More threads than CPUs, our awake helpers aside (as in machine_spare).
  const unsigned awake = awake_helpers();
  const bool crowded = runnable > awake && runnable - awake > cpus_;
  const unsigned score = crowd_.load(std::memory_order_relaxed);
  crowd_.store(crowded ? std::min(score + 1, 2 * kCrowdedChecks) : score - (score > 0),
               std::memory_order_relaxed);
  return runnable;
}

unsigned AeadHelpers::awake_helpers() const {
  const uint32_t asleep = posted_.sleepers.load(std::memory_order_relaxed);
  return static_cast<unsigned>(count()) - std::min<unsigned>(asleep, count());
}

bool AeadHelpers::machine_spare() {
  const unsigned runnable = this->runnable();
  if (runnable == 0) return true;
  const unsigned awake = awake_helpers();
  // The caller itself is runnable. The helpers that are awake (spinning after a
  // post, or at work on another caller's pieces) are taken for free: a rough
  // estimate, which the back-off corrects when it is wrong.
  return runnable <= awake || runnable - awake < cpus_;
}

bool AeadHelpers::machine_uncrowded() {
  (void)runnable();  // a fresh count, at most kMachineCheck old
  return crowd_.load(std::memory_order_relaxed) < kCrowdedChecks;
}

bool AeadHelpers::attach(ParallelAead* caller) {
  for (auto& slot : callers_) {
    ParallelAead* none = nullptr;
    if (slot.compare_exchange_strong(none, caller, std::memory_order_seq_cst)) {
      busy_.fetch_add(1, std::memory_order_relaxed);
      return true;
    }
  }
  return false;
}

void AeadHelpers::detach(ParallelAead* caller) {
  for (auto& slot : callers_) {
    ParallelAead* mine = caller;
    if (slot.compare_exchange_strong(mine, nullptr, std::memory_order_seq_cst)) break;
  }
  if (!caller->idle_) busy_.fetch_sub(1, std::memory_order_relaxed);
  // A helper that found the caller before the slot was cleared is still counted
  // here (both sides seq_cst: either it saw the empty slot, or we see it scanning).
  for (int spins = 0; scanning_.load(std::memory_order_seq_cst) != 0; ++spins) {
    cpu_relax();
    if (spins % 64 == 63) sched_yield();  // other callers may keep the helpers scanning
  }
}

void AeadHelpers::post(uint32_t helpers) {
  posted_.add(1, helpers);
}

void AeadHelpers::helper(AeadBackend& backend) {
  // Not a load: a caller may post its first burst before this thread runs.
  uint32_t seen = 0;
  for (;;) {
    seen = posted_.await_change(seen);
    if (stopping_.load(std::memory_order_acquire)) return;
    scanning_.fetch_add(1, std::memory_order_seq_cst);
    for (auto& slot : callers_)
      if (ParallelAead* caller = slot.load(std::memory_order_seq_cst)) caller->work(backend);
    scanning_.fetch_sub(1, std::memory_order_release);
  }
}

ParallelAead::ParallelAead(std::unique_ptr<AeadBackend> own, std::shared_ptr<AeadHelpers> helpers)
    : own_(std::move(own)), helpers_(std::move(helpers)) {
  cuts_.reserve(kMaxPieces + 1);
  if (helpers_ && !helpers_->attach(this)) helpers_.reset();
}

namespace {
std::shared_ptr<AeadHelpers> helpers_of(std::vector<std::unique_ptr<AeadBackend>>& lanes) {
  if (lanes.size() < 2) return nullptr;
  return std::make_shared<AeadHelpers>(
      std::vector<std::unique_ptr<AeadBackend>>(std::make_move_iterator(lanes.begin() + 1),
                                                std::make_move_iterator(lanes.end())),
      SharingOptions{false, false});
}
}  // namespace

ParallelAead::ParallelAead(std::vector<std::unique_ptr<AeadBackend>> lanes)
    : ParallelAead(std::move(lanes[0]), helpers_of(lanes)) {}

ParallelAead::~ParallelAead() {
  if (helpers_) helpers_->detach(this);
}

std::string ParallelAead::describe() const {
  const unsigned n = lanes();
  return own_->describe() + " x" + std::to_string(n) + (n == 1 ? " lane" : " lanes");
}

void ParallelAead::set_idle(bool idle) {
  if (idle == idle_) return;
  idle_ = idle;
  if (helpers_) {
    if (idle)
      helpers_->busy_.fetch_sub(1, std::memory_order_relaxed);
    else
      helpers_->busy_.fetch_add(1, std::memory_order_relaxed);
  }
}

bool ParallelAead::claim(uint32_t burst, uint32_t& piece) {
  uint64_t word = claim_.load(std::memory_order_acquire);
  for (;;) {
    const uint32_t pieces = static_cast<uint32_t>(word >> 16) & 0xffff;
    const uint32_t next = static_cast<uint32_t>(word) & 0xffff;
    if (static_cast<uint32_t>(word >> 32) != burst || next >= pieces) return false;
    if (claim_.compare_exchange_weak(word, claim_word(burst, pieces, next + 1),
                                     std::memory_order_acq_rel, std::memory_order_acquire)) {
      piece = next;
      return true;
    }
  }
}

uint32_t ParallelAead::work(AeadBackend& backend) {
  const uint32_t burst = static_cast<uint32_t>(claim_.load(std::memory_order_acquire) >> 32);
  uint32_t piece = 0, done = 0;
  for (; claim(burst, piece); ++done) {
    // The claim made the burst's jobs, cuts and direction visible, and they stay put
    // until this piece is counted finished.
    const std::span<AeadJob> jobs(jobs_ + cuts_[piece], cuts_[piece + 1] - cuts_[piece]);
    seal_ ? backend.seal_burst(jobs) : backend.open_burst(jobs);
    finished_.add(1, 1);
  }
  return done;
}

// Cuts the burst into `pieces` runs of about equal cost, none empty.
void ParallelAead::cut(std::span<AeadJob> jobs, size_t total, size_t pieces) {
  cuts_.assign(1, 0);
  size_t so_far = 0;
  for (size_t i = 0; i < jobs.size() && cuts_.size() < pieces; ++i) {
    so_far += job_cost(jobs[i]);
    const size_t remaining_jobs = jobs.size() - (i + 1);
    const size_t pieces_left = pieces - cuts_.size();
    if (so_far * pieces >= total * cuts_.size() || remaining_jobs == pieces_left)
      cuts_.push_back(i + 1);
  }
  cuts_.push_back(jobs.size());
}

void ParallelAead::run(std::span<AeadJob> jobs, bool seal) {
  size_t total = 0;
  for (const AeadJob& job : jobs) total += job_cost(job);
  const bool large = total >= kParallelMinBytes && jobs.size() >= 2;
  // A pause counts only the bursts it keeps from being shared.
  const bool paused = large && skip_ > 0;
  if (paused && --skip_ == 0) probe_ = true;
  const size_t helpers = large && !paused && helpers_ ? helpers_->spare() : 0;
  if (helpers == 0) {
    seal ? own_->seal_burst(jobs) : own_->open_burst(jobs);
    return;
  }

  const size_t pieces = std::min({jobs.size(), kMaxPieces, (1 + helpers) * kPiecesPerLane,
                                  std::max<size_t>(2, total / kMinPieceBytes)});
  cut(jobs, total, pieces);
  jobs_ = jobs.data();
  seal_ = seal;
  const uint32_t burst = ++burst_;
  const uint32_t target =
      finished_.value.load(std::memory_order_relaxed) + static_cast<uint32_t>(pieces);
  claim_.store(claim_word(burst, static_cast<uint32_t>(pieces), 0), std::memory_order_release);
  helpers_->post(static_cast<uint32_t>(helpers));
  count(shared_, 1);

  // The caller works too, so a helper that is slow to wake (its core busy elsewhere)
  // costs nothing but the pieces it did not take; then it waits for the ones taken.
  using Clock = std::chrono::steady_clock;
  const Clock::time_point start = Clock::now();
  const uint32_t own = work(*own_);
  const Clock::time_point worked = Clock::now();
  uint32_t finished = finished_.value.load(std::memory_order_acquire);
  while (finished != target) finished = finished_.await_change(finished);
  if (helpers_->options_.back_off)
    judge(own, static_cast<uint32_t>(pieces), worked - start, Clock::now() - worked, worked);
}

void ParallelAead::judge(uint32_t own, uint32_t pieces, std::chrono::nanoseconds working,
                         std::chrono::nanoseconds waiting,
                         std::chrono::steady_clock::time_point now) {
  // Old verdicts are forgotten: traffic that came and went long ago says nothing
  // about the burst in hand.
  if (now - last_verdict_ > kForgetBackoff) backoff_ = 0;
  last_verdict_ = now;
  // The first shared burst after a pause finds the helpers asleep: not a verdict.
  if (probe_) {
    probe_ = false;
    return;
  }
  const std::chrono::nanoseconds per_piece = own == 0 ? waiting : working / own;
  const bool helped = own < pieces;
  const bool held_up = waiting > 2 * per_piece + kWaitSlack;
  if (helped && !held_up) {
    backoff_ = 0;
    return;
  }
  count(backoffs_, 1);
  backoff_ = std::min<uint32_t>(backoff_ == 0 ? 1 : 2 * backoff_, kMaxBackoffBursts);
  skip_ = backoff_;
}

Result<std::unique_ptr<ParallelAead>> make_parallel_aead(
    const std::function<std::unique_ptr<AeadBackend>()>& make, unsigned lanes) {
  if (lanes == 0 || lanes > kMaxLanes)
    return Error{"AEAD lanes " + std::to_string(lanes) + ": want 1.." + std::to_string(kMaxLanes)};
  std::vector<std::unique_ptr<AeadBackend>> backends;
  for (unsigned i = 0; i < lanes; ++i) {
    backends.push_back(make());
    if (!backends.back())
      return Error{"cannot make AEAD backend instance " + std::to_string(i + 1) + " of " +
                   std::to_string(lanes)};
  }
  return std::make_unique<ParallelAead>(std::move(backends));
}

}  // namespace faraday::crypto
