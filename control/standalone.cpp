// standalone.cpp: see standalone.h. The interface (interface.h: the packet
// pipeline and its UAPI socket) on the main thread, with the signals read from a
// signalfd the loop watches.
#include "control/standalone.h"

#include "common/log.h"
#include "control/interface.h"

namespace faraday::control {

int run_standalone(const StandaloneOptions& options) {
  dataplane::PipelineOptions dp_options;
  dp_options.ifname = options.ifname;
  dp_options.mtu = options.mtu;
  dp_options.aead_backend = options.aead_backend;
  dp_options.workers = options.workers;
  dp_options.stats_interval_s = options.stats_interval_s;
  auto opened = open_interface(dp_options);
  if (!opened) {
    log::error("{}", opened.error());
    return 1;
  }
  const int code = run_until_signalled(**opened);
  opened->reset();
  log::info("stopped");
  return code;
}

}  // namespace faraday::control
