// faradayd: the Faraday node daemon. `cluster` makes this node a member of a
// Faraday cluster (cluster.h); `standalone` runs one WireGuard interface
// configured with wg(8), a drop-in for `wireguard-go -f IFNAME`.
#include <CLI/CLI.hpp>
#include <iostream>

#include "common/log.h"
#include "config.h"
#include "control/cluster.h"
#include "control/dpdk_standalone.h"
#include "control/standalone.h"

namespace {

constexpr const char* kClusterFooter = R"(
Configuration: every option above can also be set in the TOML file given with
--config, under the same name without the dashes, one `key = value` per line
at the top level (announce is an array), e.g.

    farad = "10.0.0.1:7450"
    ca = "/etc/faraday/ca.pem"
    cert = "/etc/faraday/node1.pem"
    key = "/etc/faraday/node1.key"
    interface = "faraday0"
    overlay = "10.200.0.1"
    container-prefix = "10.201.1.0/24"
    announce = ["192.0.2.11"]

The command line wins over the file, the file over the defaults. Unknown keys
are errors. --print-config shows the result.

What it does: creates the interface (overlay address, MTU, up) and serves the
WireGuard UAPI at /var/run/wireguard/INTERFACE.sock (`wg show` works); joins
farad with this node's public key, underlay endpoints, allowed IPs (overlay
address and container prefix) and link endpoint; turns every member farad
pushes into a WireGuard peer with routes for its allowed IPs; keeps a mutual
TLS link to every member and pings it. A member not heard for --silence is
reported to farad and removed only if farad answers ABSENT; while farad is
down or answers PRESENT or UNKNOWN, nothing is removed and traffic flows. The
one exception: a member farad revokes (its certificate revoked or expired) is
removed at once, silent or not.

Control socket: `faradayctl status` and `faradayctl query NAME` ask this node.
Signals: SIGTERM or SIGINT leave the cluster and remove the interface; SIGUSR1
logs the counters; SIGHUP re-reads --ca, --cert, --key and --crl (the result is
logged; a bad file, or a certificate for another name, keeps the old ones),
closes every link whose peer certificate no longer verifies (revoked, expired)
and refuses such peers from then on; farad is reached with the new files at the
next reconnect. Exit status: 0 after a clean stop, 1 if setup failed, 2 on
a configuration error.
)";

const char* const kStandaloneFooter =
    "\nCreates the TUN interface IFNAME and serves the UAPI at /var/run/wireguard/IFNAME.sock, "
    "so `wg set`, `wg setconf`, `wg showconf` and `wg show` configure and inspect it. "
    "Addresses, routes and link state are left to `ip`. Stops on SIGTERM/SIGINT, when the "
    "interface is deleted or when the socket is removed. Dropped datagrams are counted by "
    "reason and logged when the counts change; SIGUSR1 logs all counters. With --dpdk-port "
    "the underlay is a NIC (or DPDK virtual device) that faradayd drives itself: it answers "
    "ARP and neighbour solicitations for --dpdk-address and resolves its peers, IFNAME is a TAP "
    "made by DPDK's net_tap (or a TUN, or a vhost-user socket for a DPDK application: "
    "--dpdk-inner), "
    "each lcore polls a queue pair of both (all the time unless --dpdk-idle-sleep), and wg(8) "
    "may not change "
    "listen-port or fwmark. Exit status: 0 after a clean stop, 1 if setup failed, 2 on a bad "
    "option or setting.";

void add_dpdk_options(CLI::App& sa, faraday::control::DpdkOptions* d) {
  const std::string built =
      faraday::control::dpdk_built() ? "" : " (this build has no DPDK: libdpdk-dev was missing)";
  CLI::Option* port =
      sa.add_option("--dpdk-port", d->port,
                    "Drive this NIC with DPDK as the underlay instead of kernel sockets: a PCI "
                    "address (0000:3b:00.0) or a DPDK virtual device "
                    "(net_af_packet0,iface=eth1)" +
                        built)
          ->group("DPDK underlay");
  sa.add_option("--dpdk-address", d->addresses,
                "This node's address on that port, ADDRESS/PREFIX; faradayd answers ARP (or "
                "neighbour solicitations) for it and resolves its peers itself. Once per "
                "family: give it twice for IPv4 and IPv6")
      ->allow_extra_args(false)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll)
      ->needs(port)
      ->group("DPDK underlay");
  port->needs(sa.get_option("--dpdk-address"));
  sa.add_option("--dpdk-gateway", d->gateways,
                "Next hop for peers off the prefix of the --dpdk-address of its family (once "
                "per family)")
      ->allow_extra_args(false)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll)
      ->needs(port)
      ->group("DPDK underlay");
  sa.add_option("--dpdk-listen-port", d->listen_port, "UDP port on the DPDK underlay")
      ->default_val(51820)
      ->needs(port)
      ->group("DPDK underlay");
  sa.add_option("--dpdk-lcores", d->lcores,
                "CPUs the lcores run on, e.g. 2 or 2,3: one queue pair of each port per lcore "
                "(a NIC's RSS queues, the TAP's queues, the vhost-user socket's, at most 64 "
                "there; net_af_packet needs qpairs=N in --dpdk-port); an lcore whose queues "
                "are empty takes turns on the others', so one tunnel uses them all; the first "
                "is also the handshake context (default: the first CPU this process may use)")
      ->needs(port)
      ->group("DPDK underlay");
  sa.add_flag("--dpdk-hugepages", d->hugepages,
              "Take DPDK's memory from reserved hugepages (default: ordinary memory)")
      ->needs(port)
      ->group("DPDK underlay");
  sa.add_option("--dpdk-memory", d->memory_mb, "MiB of memory for DPDK")
      ->default_val(256)
      ->needs(port)
      ->group("DPDK underlay");
  sa.add_option("--dpdk-inner", d->inner,
                "The inner side: tap (IFNAME is an Ethernet interface, DPDK's net_tap; faradayd "
                "answers the host's ARP and neighbour solicitations on it for the whole mesh), "
                "tun (IP only, DPDK's net_tun) or vhost (a vhost-user socket, --dpdk-vhost-socket, "
                "for a DPDK application to attach to with virtio-user; ARP and ND answered as on "
                "the TAP; no kernel interface, IFNAME names the UAPI socket)")
      ->default_val("tap")
      ->check(CLI::IsMember({"tap", "tun", "vhost"}))
      ->needs(port)
      ->group("DPDK underlay");
  sa.add_option("--dpdk-vhost-socket", d->vhost_socket,
                "With --dpdk-inner vhost: the socket's path (default "
                "/run/faraday/IFNAME-vhost.sock; a stale one is removed; PATH.lock next to it "
                "keeps a second faradayd off). The application's MTU must be at most --mtu")
      ->needs(port)
      ->group("DPDK underlay");
  sa.add_option("--dpdk-idle-sleep", d->idle_sleep_us,
                "Microseconds to wait after a round of polls that found no packet, leaving the "
                "core to others (a shared core, a test machine); packets that arrive meanwhile "
                "wait as long. 0: poll all the time, for the lowest latency on a dedicated core")
      ->default_val(0)
      ->check(CLI::Range(0u, faraday::control::kMaxIdleSleepUs))
      ->needs(port)
      ->group("DPDK underlay");
}

// `faradayd standalone` and its options.
CLI::App* add_standalone(CLI::App& app, faraday::control::StandaloneOptions* o,
                         faraday::control::DpdkOptions* dpdk) {
  CLI::App* sa = app.add_subcommand(
      "standalone", "Run one WireGuard interface in the foreground, like `wireguard-go -f IFNAME`");
  sa->footer(kStandaloneFooter);
  sa->add_option("IFNAME", o->ifname, "Interface name (at most 15 characters)")->required();
  sa->add_option("--mtu", o->mtu, "MTU of the interface")
      ->default_val(1420)
      ->check(CLI::Range(576, 65535 - 80));
  sa->add_option("--aead", o->aead_backend,
                 "Force an AEAD backend (sodium, ipsec-mb); default: the fastest that passes its "
                 "known-answer self-test");
  sa->add_option("--workers", o->workers,
                 "Data-path threads, each with its own TUN queue and UDP socket, and as many "
                 "AEAD helpers less one, which take pieces of a busy worker's large bursts while "
                 "a core is spare (without multi-queue TUN: one queue, its bursts shared the "
                 "same way); 0: as many as the CPUs this process may run on")
      ->default_val(0)
      ->check(CLI::Range(0, 64));
  sa->add_option("--stats-interval", o->stats_interval_s,
                 "Log drop counters at most every N seconds, when they change")
      ->default_val(10);

  add_dpdk_options(*sa, dpdk);
  return sa;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace faraday::control;
  CLI::App app{"faradayd " FARADAY_VERSION
               ": the Faraday node daemon, a userspace WireGuard implementation that joins "
               "a Faraday cluster.\n"};
  app.set_version_flag("--version", FARADAY_VERSION);
  app.require_subcommand(1);
  bool verbose = false;
  app.add_flag("-v,--verbose", verbose, "Log debug lines too");

  CLI::App* cl = app.add_subcommand(
      "cluster", "Join a Faraday cluster through farad and keep this node's mesh in step");
  cl->footer(kClusterFooter);
  std::string config_path;
  bool print_config = false;
  cl->add_option("-c,--config", config_path, "TOML configuration file (see below)");
  cl->add_flag("--print-config", print_config,
               "Print the effective configuration as TOML and exit");
  ClusterConfig cli;
  add_cluster_options(*cl, &cli);

  StandaloneOptions standalone;
  DpdkOptions dpdk;
  CLI::App* sa = add_standalone(app, &standalone, &dpdk);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version exit 0; a bad option is a configuration error.
    return app.exit(e) == 0 ? 0 : 2;
  }
  if (verbose) faraday::log::threshold() = faraday::log::Level::kDebug;
  if (sa->parsed() && !dpdk.port.empty()) {
    if (sa->count("--workers") > 0)
      faraday::log::warn("--workers: ignored on a DPDK port, where --dpdk-lcores sets the lcores");
    return run_standalone_dpdk(standalone, dpdk);
  }
  if (sa->parsed()) return run_standalone(standalone);

  ClusterConfig config;
  if (!config_path.empty()) {
    if (faraday::Status loaded = load_cluster_config(config_path, &config); !loaded) {
      faraday::log::error("{}", loaded.error());
      return 2;
    }
  }
  apply_cluster_overrides(*cl, cli, &config);
  if (verbose) config.log_level = "debug";
  auto options = to_cluster_options(config);
  if (!options) {
    faraday::log::error("configuration: {}", options.error());
    return 2;
  }
  if (print_config) {
    std::cout << cluster_config_text(config);
    return 0;
  }
  faraday::log::threshold() =
      *faraday::log::parse_level(config.log_level);  // checked with the rest
  return run_cluster(*options);
}
