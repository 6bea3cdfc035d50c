// bench_workers.h: the data path on 1 and on 2 cores, in two shapes: many flows (a
// hub with 16 peers, every burst mixing all of them) and one peer with one flow.
// Two ways to use 2 cores: 2 AEAD lanes sharing each burst in order
// (crypto::ParallelAead), and 2 queue workers, threads that each run the hub's
// Device on half of the bursts at once (the Worker API, dataplane/worker.h), as
// two TUN queues or sockets would. The hub's send_burst (encrypt) and
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
  // [0]: 1 worker, [1]: 2 AEAD lanes, [2]: 2 queue workers
  Figures enc[3], dec[3];
};

// Every scenario and size for the backend `make` makes, `seconds` of timed work per
// scenario and size (split over the four measurements). Prints each figure.
std::vector<WorkerRun> bench_workers(const std::string& backend, const crypto::AeadFactory& make,
                                     double seconds);

// The table of Mpps, Gbit/s and the ratios to 1 worker.
void print_workers(const std::vector<WorkerRun>& runs);

}  // namespace faraday::bench
