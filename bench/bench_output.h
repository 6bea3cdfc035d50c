// bench_output.h: dataplane_bench's results on disk: a JSON file of every figure
// (one flat list, plus the worker ratios) and an SVG bar chart of the worker runs
// beside it (same path, .svg). Written by the bench itself: no plotting tool needed.
#pragma once

#include <string>
#include <vector>

#include "bench/bench_common.h"
#include "bench/bench_workers.h"

namespace faraday::bench {

// One measured figure: "pipeline encrypt", "seal_burst", "libsodium seal", ...
struct Entry {
  std::string backend;
  std::string measure;
  size_t size = 0;
  Figures figures;
};

// Writes `path` (creating its directory) and the chart next to it; false, with a
// message on stderr, if either cannot be written.
bool write_results(const std::string& path, const std::vector<Entry>& entries,
                   const std::vector<WorkerRun>& workers);

}  // namespace faraday::bench
