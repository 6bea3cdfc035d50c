// interface.cpp: see interface.h.
#include "control/interface.h"

#include <fmt/format.h>

#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <string>

#include "common/log.h"
#include "control/uapi.h"

namespace faraday::control {

namespace {

void to_log(dataplane::LogLevel level, std::string_view line) {
  switch (level) {
    case dataplane::LogLevel::kInfo:
      log::info("{}", line);
      break;
    case dataplane::LogLevel::kWarn:
      log::warn("{}", line);
      break;
    case dataplane::LogLevel::kError:
      log::error("{}", line);
      break;
  }
}

// The UAPI server as one of the pipeline's poll services.
class UapiService : public dataplane::PollService {
 public:
  explicit UapiService(std::unique_ptr<uapi::Server> server) : server_(std::move(server)) {}

  void append_pollfds(std::vector<pollfd>& fds) const override { server_->append_pollfds(fds); }
  void handle(std::span<const pollfd> fds) override { server_->handle(fds); }

  bool still_present() override {
    if (server_->socket_file_present()) return true;
    log::info("UAPI socket {} was removed, shutting down", server_->path());
    return false;
  }

  void log_stats(bool force) override {
    if (!force) return;
    const uapi::Counters& c = server_->counters();
    std::string rejected;
    for (size_t i = 0; i < c.rejected.size(); ++i)
      if (c.rejected[i] != 0)
        rejected +=
            fmt::format(" {}={}", uapi::to_string(static_cast<uapi::Reject>(i)), c.rejected[i]);
    const auto& last = server_->last_rejection();
    log::info(
        "uapi: connections={} clients={} get={} set={} aborted={} rejected={}{}; last "
        "rejection: {}",
        c.connections, server_->client_count(), c.get_requests, c.set_requests, c.aborted_requests,
        total(c), rejected,
        last ? fmt::format("{} ({})", last->message, uapi::to_string(last->reason)) : "none");
  }

 private:
  static uint64_t total(const uapi::Counters& c) {
    uint64_t sum = 0;
    for (uint64_t n : c.rejected) sum += n;
    return sum;
  }

  std::unique_ptr<uapi::Server> server_;
};

}  // namespace

dataplane::LogSink log_sink() {
  return to_log;
}

Status serve_uapi(dataplane::DataPath& dp) {
  dataplane::DataPath* p = &dp;
  auto server = uapi::Server::listen(
      dp.ifname(), [p] { return p->state(); },
      [p](const uapi::SetRequest& r) -> Result<void, uapi::Error> {
        auto applied = p->apply(r);
        if (applied) return {};
        const dataplane::ApplyError& e = applied.failure();
        return uapi::Error{e.errno_value, e.message, uapi::Reject::kApplyFailed};
      });
  if (!server)
    return Error{fmt::format("cannot serve the UAPI for {}: {}", dp.ifname(), server.error())};
  log::info("interface {} up: {}, UAPI {}", dp.ifname(), dp.summary(), (*server)->path());
  log::info("interface {} AEAD backend {}", dp.ifname(), dp.aead_choice());
  dp.attach(std::make_unique<UapiService>(std::move(*server)));
  return {};
}

Result<std::unique_ptr<dataplane::Pipeline>> open_interface(dataplane::PipelineOptions options) {
  options.log = to_log;
  auto opened = dataplane::Pipeline::open(options);
  if (!opened) return Error{opened.error()};
  if (Status served = serve_uapi(**opened); !served) return served.failure();
  return std::move(*opened);
}

int run_until_signalled(dataplane::DataPath& dp) {
  sigset_t mask;
  sigemptyset(&mask);
  for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGUSR1}) sigaddset(&mask, sig);
  sigprocmask(SIG_BLOCK, &mask, nullptr);
  const int signal_fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
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
  const dataplane::DataPath::Exit exit = dp.run();
  close(signal_fd);
  return exit == dataplane::DataPath::Exit::kError ? 1 : 0;
}

}  // namespace faraday::control
