// interface.h: one WireGuard interface as faradayd runs it: the packet pipeline
// (dataplane/pipeline.h) with the cross-platform UAPI socket
// (/var/run/wireguard/IFNAME.sock, uapi.h) served from the pipeline's loop, so
// wg(8) requests are applied between bursts on the pipeline's thread, and
// faradayd's log as the pipeline's log sink.
//
// The UAPI server is attached to the pipeline as a PollService: it is polled
// with the pipeline's fds, accepts only when its listening socket is readable,
// logs each rejected request with its reason, reports its counters and last
// rejection with the pipeline's stats (SIGUSR1 and exit), and stops the loop
// when its socket file is removed.
//
// Threads: open_interface() on the thread that will run the pipeline (or before
// that thread starts); the rest runs on the pipeline's thread.
#pragma once

#include <memory>
#include <string>

#include "dataplane/pipeline.h"
#include "result.h"

namespace faraday::control {

// Opens the pipeline for options (options.log is set to faradayd's log) and
// starts serving its UAPI; logs the "interface up" line. An error message
// naming what failed otherwise.
Result<std::unique_ptr<dataplane::Pipeline>> open_interface(dataplane::PipelineOptions options);

}  // namespace faraday::control
