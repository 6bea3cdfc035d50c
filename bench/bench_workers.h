// bench_workers.h: the data path with its AEAD shared by 1 and by 2 workers
// (crypto::ParallelAead lanes), in two shapes: many flows (a hub with 16 peers, every
// burst mixing all of them) and one peer with one flow. The hub's send_burst
// (encrypt) and receive_burst (decrypt) are timed; 1 and 2 workers take turns in
// short rounds so both see the same machine weather.
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
  Figures enc[2], dec[2];  // [0]: 1 worker, [1]: 2 workers
};

// Every scenario and size for the backend `make` makes, `seconds` of timed work per
// scenario and size (split over the four measurements). Prints each figure.
std::vector<WorkerRun> bench_workers(const std::string& backend, const crypto::AeadFactory& make,
                                     double seconds);

// The table of Mpps, Gbit/s and the ratio 2 workers / 1 worker.
void print_workers(const std::vector<WorkerRun>& runs);

}  // namespace faraday::bench
