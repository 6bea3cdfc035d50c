// aead_parallel.h: one burst's AEAD over several cores, in order. ParallelAead is an
// AeadBackend made of N lanes, each its own instance of one backend type (a backend
// object is not thread-safe: the ipsec-mb one owns a job manager). seal_burst and
// open_burst cut the burst into contiguous pieces of about equal bytes; the calling
// thread (on lane 0) and the helper threads (one per other lane) take pieces until
// none is left, and the call returns only when every piece is done. The caller then
// sees the whole burst finished, exactly as with one backend: jobs keep their order,
// so packets of one peer leave in the order they came, and each job has its own ok
// flag.
//
// The caller takes pieces too, so a helper slow to wake (its core busy with something
// else) costs only the pieces it did not take: on a loaded machine a burst is never
// much slower than on one core. A burst smaller than kParallelMinBytes runs on the
// caller alone: handing it off costs more than it saves.
//
// No lock and no allocation per burst: the caller publishes the burst (its pieces'
// bounds, then one 64-bit claim word: burst number, piece count, next piece) and bumps
// a wake-up number; lanes claim pieces by compare-and-swap on the claim word and count
// the pieces they finish. An idle helper spins for kSpinWait, then sleeps in
// std::atomic::wait (a futex), so an idle daemon burns no CPU; the caller likewise
// spins, then sleeps, while it waits for a piece a helper took.
//
// Threads: helpers start in the constructor and are joined by the destructor; they
// block every signal, so signals go to the threads that expect them. The
// object itself is used by one thread at a time (the data path's), like any backend.
// With lanes == 1 no thread is started and every burst runs inline.
#pragma once

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
// kMaxPieces. More pieces than lanes let a late helper join in and the caller absorb
// the pieces of a helper that never woke.
constexpr size_t kPiecesPerLane = 2;
constexpr size_t kMinPieceBytes = 6 * 1024;
constexpr size_t kMaxPieces = 256;
// How long an idle helper (or the caller waiting for one) spins before sleeping.
constexpr std::chrono::microseconds kSpinWait{50};
// The most lanes a ParallelAead has (a `workers` setting above this is refused).
constexpr unsigned kMaxLanes = 64;

class ParallelAead final : public AeadBackend {
 public:
  // One lane per backend; lanes[0] runs on the calling thread. Not empty; at most
  // kMaxLanes; all of one type.
  explicit ParallelAead(std::vector<std::unique_ptr<AeadBackend>> lanes);
  ~ParallelAead() override;
  ParallelAead(const ParallelAead&) = delete;
  ParallelAead& operator=(const ParallelAead&) = delete;

  const char* name() const override { return lanes_[0]->name(); }
  // "ipsec-mb (avx512) x2 lanes".
  std::string describe() const override;
  void seal_burst(std::span<AeadJob> jobs) override { run(jobs, true); }
  void open_burst(std::span<AeadJob> jobs) override { run(jobs, false); }
  unsigned lanes() const { return static_cast<unsigned>(lanes_.size()); }

 private:
  void run(std::span<AeadJob> jobs, bool seal);
  void cut(std::span<AeadJob> jobs, size_t total, size_t pieces);
  void helper(AeadBackend& backend);
  // Claims and runs pieces of burst `burst` on `backend` until none is left.
  void work(AeadBackend& backend, uint32_t burst);
  bool claim(uint32_t burst, uint32_t& piece);

  std::vector<std::unique_ptr<AeadBackend>> lanes_;  // [0]: the caller's
  std::vector<std::thread> helpers_;                 // one per lane after the first
  // The burst in hand, written by the caller before it publishes claim_ and read by
  // a lane only after it claimed a piece; unchanged until every piece is finished.
  AeadJob* jobs_ = nullptr;
  bool seal_ = false;
  std::vector<size_t> cuts_;  // piece i is jobs [cuts_[i], cuts_[i + 1])
  uint32_t burst_ = 0;        // caller only: the last burst number handed out
  alignas(64) std::atomic<uint64_t> claim_{0};
  alignas(64) std::atomic<uint32_t> wake_{0};      // the last burst posted; helpers wait on it
  alignas(64) std::atomic<uint32_t> finished_{0};  // pieces finished, ever; the caller waits
  std::atomic<bool> stopping_{false};
};

// Makes `lanes` instances with `make` and puts them behind one ParallelAead. An error
// when lanes is 0 or above kMaxLanes, or `make` returns null.
Result<std::unique_ptr<ParallelAead>> make_parallel_aead(
    const std::function<std::unique_ptr<AeadBackend>()>& make, unsigned lanes);

}  // namespace faraday::crypto
