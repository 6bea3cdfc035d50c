// aead_parallel.cpp: see aead_parallel.h.
#include "crypto/aead_parallel.h"

#include <pthread.h>
#include <signal.h>

#include <algorithm>
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

// Waits until `word` is no longer `old` and returns its new value (acquire): spins for
// kSpinWait, checking the clock every few dozen pauses, then sleeps on the futex.
uint32_t await_change(const std::atomic<uint32_t>& word, uint32_t old) {
  using Clock = std::chrono::steady_clock;
  const Clock::time_point until = Clock::now() + kSpinWait;
  do {
    for (int i = 0; i < 32; ++i) {
      const uint32_t now = word.load(std::memory_order_acquire);
      if (now != old) return now;
      cpu_relax();
    }
  } while (Clock::now() < until);
  for (;;) {
    word.wait(old, std::memory_order_acquire);
    const uint32_t now = word.load(std::memory_order_acquire);
    if (now != old) return now;
  }
}

size_t job_cost(const AeadJob& job) {
  return job.length + kJobCostBytes;
}

// The claim word: burst sequence (high 32 bits), pieces in the burst, next piece.
constexpr uint64_t claim_word(uint32_t burst, uint32_t pieces, uint32_t next) {
  return uint64_t{burst} << 32 | uint64_t{pieces} << 16 | next;
}

}  // namespace

ParallelAead::ParallelAead(std::vector<std::unique_ptr<AeadBackend>> backends) {
  lanes_ = std::move(backends);
  cuts_.reserve(kMaxPieces + 1);
  // Helpers take no signals: they inherit a mask that blocks all of them, so a
  // process-directed signal (SIGTERM, SIGUSR1) still goes to a thread that expects
  // it (faradayd's signalfd) instead of killing the process from a helper.
  sigset_t all, before;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &before);
  for (size_t i = 1; i < lanes_.size(); ++i) {
    helpers_.emplace_back([this, i] { helper(*lanes_[i]); });
    const std::string name = "aead-lane" + std::to_string(i);
    pthread_setname_np(helpers_.back().native_handle(), name.c_str());
  }
  pthread_sigmask(SIG_SETMASK, &before, nullptr);
}

ParallelAead::~ParallelAead() {
  stopping_.store(true, std::memory_order_release);
  wake_.fetch_add(1, std::memory_order_release);
  wake_.notify_all();
  for (std::thread& t : helpers_) t.join();
}

std::string ParallelAead::describe() const {
  const size_t n = lanes_.size();
  return lanes_[0]->describe() + " x" + std::to_string(n) + (n == 1 ? " lane" : " lanes");
}

void ParallelAead::helper(AeadBackend& backend) {
  // Not a load: the caller may post the first burst before this thread runs.
  uint32_t seen = 0;
  for (;;) {
    seen = await_change(wake_, seen);
    if (stopping_.load(std::memory_order_acquire)) return;
    work(backend, seen);
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

void ParallelAead::work(AeadBackend& backend, uint32_t burst) {
  uint32_t piece = 0;
  while (claim(burst, piece)) {
    // The claim made the burst's jobs, cuts and direction visible, and they stay put
    // until this piece is counted finished.
    const std::span<AeadJob> jobs(jobs_ + cuts_[piece], cuts_[piece + 1] - cuts_[piece]);
    seal_ ? backend.seal_burst(jobs) : backend.open_burst(jobs);
    finished_.fetch_add(1, std::memory_order_release);
    finished_.notify_one();
  }
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
  AeadBackend& own = *lanes_[0];
  if (lanes_.size() == 1 || total < kParallelMinBytes || jobs.size() < 2) {
    seal ? own.seal_burst(jobs) : own.open_burst(jobs);
    return;
  }

  const size_t pieces = std::min({jobs.size(), kMaxPieces, lanes_.size() * kPiecesPerLane,
                                  std::max<size_t>(2, total / kMinPieceBytes)});
  cut(jobs, total, pieces);
  jobs_ = jobs.data();
  seal_ = seal;
  const uint32_t burst = ++burst_;
  const uint32_t target = finished_.load(std::memory_order_relaxed) + static_cast<uint32_t>(pieces);
  claim_.store(claim_word(burst, static_cast<uint32_t>(pieces), 0), std::memory_order_release);
  wake_.store(burst, std::memory_order_release);
  wake_.notify_all();

  // The caller works too, so a helper that is slow to wake (its core busy elsewhere)
  // costs nothing but the pieces it did not take; then it waits for the ones taken.
  work(own, burst);
  uint32_t finished = finished_.load(std::memory_order_acquire);
  while (finished != target) finished = await_change(finished_, finished);
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
