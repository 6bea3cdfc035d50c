// standalone.cpp: see standalone.h. The interface (interface.h: the packet
// pipeline and its UAPI socket) on the main thread, with the signals read from a
// signalfd the loop watches.
#include "control/standalone.h"

#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>

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
  dataplane::Pipeline& dp = **opened;

  sigset_t mask;
  sigemptyset(&mask);
  for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGUSR1}) sigaddset(&mask, sig);
  sigprocmask(SIG_BLOCK, &mask, nullptr);
  int signal_fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
  if (signal_fd < 0) {
    log::error("signalfd: {}", std::strerror(errno));
    return 1;
  }
  dp.watch(signal_fd, [&] {
    signalfd_siginfo info;
    while (read(signal_fd, &info, sizeof(info)) == sizeof(info)) {
      if (info.ssi_signo == SIGUSR1) {
        dp.log_stats(true);
        continue;
      }
      log::info("signal {} received, shutting down", strsignal(static_cast<int>(info.ssi_signo)));
      return false;
    }
    return true;
  });
  dataplane::Pipeline::Exit exit = dp.run();
  opened->reset();
  close(signal_fd);
  log::info("stopped");
  return exit == dataplane::Pipeline::Exit::kError ? 1 : 0;
}

}  // namespace faraday::control
