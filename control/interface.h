// interface.h: one WireGuard interface as faradayd runs it: a data path
// (dataplane/data_path.h: the kernel pipeline, or the DPDK one of
// dpdk_standalone.h) with the cross-platform UAPI socket
// (/var/run/wireguard/IFNAME.sock, uapi.h) served from the data path's loop,
// so wg(8) requests are applied between bursts on its thread, and faradayd's
// log as its log sink.
//
// The UAPI server is attached to the data path as a PollService: it is polled
// with the data path's fds, accepts only when its listening socket is readable,
// logs each rejected request with its reason, reports its counters and last
// rejection with the data path's stats (SIGUSR1 and exit), and stops the loop
// when its socket file is removed.
//
// Threads: open_interface() and serve_uapi() on the thread that will run the
// data path (or before that thread starts); the rest runs on the data path's
// thread.
#pragma once

#include <memory>
#include <string>

#include "dataplane/pipeline.h"
#include "result.h"

namespace faraday::control {

// Opens the pipeline for options (options.log is set to faradayd's log) and
// serves its UAPI (serve_uapi). An error message naming what failed otherwise.
Result<std::unique_ptr<dataplane::Pipeline>> open_interface(dataplane::PipelineOptions options);

// Serves dp's UAPI from its loop and logs the "interface up" lines. Before
// dp.run(), on the thread that will run it (or before that thread starts).
Status serve_uapi(dataplane::DataPath& dp);

// faradayd's log as a data path's log sink.
dataplane::LogSink log_sink();

// Runs dp on this thread until SIGTERM or SIGINT (SIGUSR1 logs its counters),
// or until it stops on its own (its interface or UAPI socket removed);
// returns the process exit code.
int run_until_signalled(dataplane::DataPath& dp);

}  // namespace faraday::control
