// faradayd: the Faraday node daemon. Today one mode, `standalone`, a drop-in
// for `wireguard-go -f IFNAME` configured with wg(8).
#include <CLI/CLI.hpp>

#include "config.h"
#include "control/log.h"
#include "control/standalone.h"

int main(int argc, char** argv) {
  using namespace faraday::control;
  CLI::App app{"faradayd " FARADAY_VERSION
               ": the Faraday node daemon, a userspace WireGuard implementation.\n"};
  app.set_version_flag("--version", FARADAY_VERSION);
  app.require_subcommand(1);
  bool verbose = false;
  app.add_flag("-v,--verbose", verbose, "Log debug lines too");

  StandaloneOptions standalone;
  CLI::App* sa = app.add_subcommand(
      "standalone", "Run one WireGuard interface in the foreground, like `wireguard-go -f IFNAME`");
  sa->footer(
      "\nCreates the TUN interface IFNAME and serves the UAPI at /var/run/wireguard/IFNAME.sock, "
      "so `wg set`, `wg setconf`, `wg showconf` and `wg show` configure and inspect it. "
      "Addresses, routes and link state are left to `ip`. Stops on SIGTERM/SIGINT, when the "
      "interface is deleted or when the socket is removed. Dropped datagrams are counted by "
      "reason and logged when the counts change; SIGUSR1 logs all counters.");
  sa->add_option("IFNAME", standalone.ifname, "Interface name (at most 15 characters)")->required();
  sa->add_option("--mtu", standalone.mtu, "MTU of the interface")
      ->default_val(1420)
      ->check(CLI::Range(576, 65535 - 80));
  sa->add_option("--aead", standalone.aead_backend,
                 "Force an AEAD backend (sodium); default: the fastest that passes its "
                 "known-answer self-test");
  sa->add_option("--stats-interval", standalone.stats_interval_s,
                 "Log drop counters at most every N seconds, when they change")
      ->default_val(10);

  CLI11_PARSE(app, argc, argv);
  if (verbose) log::threshold() = log::Level::kDebug;
  if (sa->parsed()) return run_standalone(standalone);
  return 2;
}
