// bench_workers.h: the data path on 1 and on 2 cores, in two shapes: many flows (a
// hub with 16 peers, every burst mixing all of them) and one peer with one flow.
// Two ways to use 2 cores: 2 AEAD lanes sharing each burst in order
// (crypto::ParallelAead; what a pipeline without multi-queue TUN does), and 2
// workers as a pipeline with a TUN queue and a UDP socket per worker runs them
// (the Worker API, dataplane/worker.h, each worker's AEAD over one shared helper;
// dataplane/queue_worker.h). Many flows spread over both queues, so both workers
// run their own queue's bursts at once; one flow stays on one queue, so the
// other worker takes turns on it (dataplane/turns.h), two bursts in flight each,
// as faradayd's workers do. Every figure is the Worker path between a read and
// a send, without them: the reads and sends that faradayd does under the turns
// are not here (bench/e2e.sh has them). The hub's send_burst (encrypt) and
// receive_burst (decrypt) are timed; the three take turns in short rounds so all
// see the same machine weather.
#pragma once

#include <string>
#include <vector>

#include "bench/bench_common.h"

namespace faraday::bench {

struct WorkerRun {
  std::string backend;   // "ipsec-mb"
  std::string scenario;  // "many flows (16 peers)" or "one peer, one flow"
  size_t peers = 0;
  size_t size = 0;
  // [0]: 1 worker, [1]: 2 AEAD lanes, [2]: 2 workers (queues)
  Figures enc[3], dec[3];
  // seal_burst alone, on buffers of its own: [0] 1 thread, [1] 2 threads at once.
  Figures raw[2];
};

// Every scenario and size for the backend `make` makes, `seconds` of timed work per
// scenario and size (split over the four measurements). Prints each figure.
std::vector<WorkerRun> bench_workers(const std::string& backend, const crypto::AeadFactory& make,
                                     double seconds);

// The table of Mpps, Gbit/s and the ratios to 1 worker.
void print_workers(const std::vector<WorkerRun>& runs);

}  // namespace faraday::bench
