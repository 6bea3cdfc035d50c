// farad: the Faraday coordinator. Keeps the cluster's membership in memory,
// serves nodes over mutual TLS (farad.proto), pushes joins and changes to every
// member, and answers "is X still present?".
#include <signal.h>
#include <sys/resource.h>

#include <CLI/CLI.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <iostream>

#include "common/log.h"
#include "config.h"
#include "farad/server.h"
#include "farad/settings.h"

namespace {

namespace log = faraday::log;

constexpr const char* kFooter = R"(
Configuration: every option above can also be set in the TOML file given with
--config, under the same name without the dashes in front, one `key = value`
per line at the top level, e.g.

    listen = "0.0.0.0:7450"
    ca = "/etc/faraday/ca.pem"
    cert = "/etc/faraday/farad.pem"
    key = "/etc/faraday/farad.key"
    crl = "/etc/faraday/crl.pem"
    expiry = 30

The command line wins over the file, the file over the defaults. Unknown keys
are errors. --print-config shows the result.

Identity: a node is named by the subject Common Name (CN) of its client
certificate, which must chain to --ca; it can register and change only the
entry of that name. Only TLS 1.3 is spoken. While a member's connection is
open, a second connection with the same name but another WireGuard key is
refused (NAME_IN_USE) and logged as a security event; the same key takes over
(a restart), and a new key is accepted once the holder's connection closed.

Trust: a member whose certificate stops verifying (revoked by the CRL after a
SIGHUP, or expired while connected) is removed at once and every node is told
to drop it (a Removal in the next push), without waiting for silence.

Signals: SIGHUP re-reads the CA, certificate, key and CRL (connections and
members whose certificate no longer verifies are closed and revoked; if a file
is bad the old configuration stays); SIGUSR1 logs the counters; SIGTERM and SIGINT log them
and stop. Membership lives in memory only: after a restart farad draws a new
epoch and rebuilds it from the nodes' re-joins, answering UNKNOWN meanwhile.
The protocol is documented in proto/farad.proto.
)";

void raise_fd_limit(uint64_t max_connections) {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return;
  if (rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < max_connections + 32) {
    log::warn(
        "open-file limit {} is below max-connections {} (+32): connections beyond it "
        "fail to be accepted",
        rl.rlim_cur, max_connections);
  }
}

}  // namespace

int main(int argc, char** argv) {
  using namespace faraday::farad;
  CLI::App app{"farad " FARADAY_VERSION
               ": the Faraday coordinator. Tracks the cluster's members in memory, serves "
               "faradayd nodes over mutual TLS 1.3, pushes joins and changes to every member "
               "and answers whether a node is still present.\n"};
  app.set_version_flag("--version", FARADAY_VERSION);
  app.footer(kFooter);
  std::string config_path;
  bool print_config = false;
  bool verbose = false;
  app.add_option("-c,--config", config_path, "TOML configuration file (see below)");
  app.add_flag("--print-config", print_config,
               "Print the effective configuration as TOML and exit");
  app.add_flag("-v,--verbose", verbose, "Same as --log-level debug");
  Config cli;
  add_config_options(app, &cli);
  CLI11_PARSE(app, argc, argv);

  Config config;
  if (!config_path.empty()) {
    if (faraday::Status loaded = load_config_file(config_path, &config); !loaded) {
      log::error("{}", loaded.error());
      return 2;
    }
  }
  apply_cli_overrides(app, cli, &config);
  if (verbose) config.log_level = "debug";
  auto checked = to_server_options(config);
  if (!checked) {
    log::error("configuration: {}", checked.error());
    return 2;
  }
  ServerOptions options = std::move(*checked);
  if (print_config) {
    std::cout << config_text(config);
    return 0;
  }
  log::threshold() = *log::parse_level(config.log_level);  // checked with the rest
  signal(SIGPIPE, SIG_IGN);
  raise_fd_limit(options.max_connections);

  boost::asio::io_context io(1);
  Server server(io, options);
  if (faraday::Status started = server.start(); !started) {
    log::error("{}", started.error());
    return 1;
  }
  boost::asio::signal_set signals(io, SIGINT, SIGTERM, SIGHUP);
  signals.add(SIGUSR1);
  std::function<void(const boost::system::error_code&, int)> on_signal =
      [&](const boost::system::error_code& ec, int sig) {
        if (ec) return;
        if (sig == SIGHUP) {
          (void)server.reload_tls();  // logs a failure itself
        } else if (sig == SIGUSR1) {
          log::info("{}", server.counters_text());
        } else {
          log::info("stopping on signal {}; {}", sig, server.counters_text());
          server.stop();
          io.stop();
          return;
        }
        signals.async_wait(on_signal);
      };
  signals.async_wait(on_signal);
  io.run();
  return 0;
}
