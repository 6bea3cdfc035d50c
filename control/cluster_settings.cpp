// cluster_settings.cpp: see cluster_settings.h.
#include "control/cluster_settings.h"

#include <fmt/core.h>

#include "common/log.h"
#include "common/settings_table.h"
#include "crypto/aead_parallel.h"
#include "dataplane/tun_port.h"

namespace faraday::control {

namespace {

using C = ClusterConfig;

// The data path's settings, for table(): the kernel's or a DPDK port's.
settings::Table<C> dataplane_settings() {
  return {
      {"workers",
       "Data-path threads, 0..64, each with its own TUN queue and UDP socket, and as many AEAD "
       "helpers less one, which take pieces of a busy worker's large bursts while a core is "
       "spare (without multi-queue TUN: one queue, its bursts shared the same way); 0: as many "
       "as the CPUs this process may run on",
       &C::workers},
      {"dataplane",
       "kernel (kernel UDP sockets and a TUN device) or dpdk (faradayd drives the underlay "
       "NIC itself, dpdk-port, a queue pair per dpdk-lcores; the farad connection and the "
       "links stay on the host's network)",
       &C::dataplane},
      {"dpdk-port",
       "dataplane dpdk: the underlay device, a PCI address (0000:03:00.0) or a DPDK vdev "
       "(net_af_packet0,iface=eth1)",
       &C::dpdk_port},
      {"dpdk-address",
       "dataplane dpdk: this node's address on the port with its prefix, one per family "
       "(10.0.0.1/24, fd00::1/64); announced unless announce is set",
       &C::dpdk_address},
      {"dpdk-gateway", "dataplane dpdk: next hop for peers off the port's prefix, one per family",
       &C::dpdk_gateway},
      {"dpdk-lcores",
       "dataplane dpdk: the CPUs of the lcores, a queue pair of each port per lcore (with "
       "net_af_packet, qpairs=N in dpdk-port) [default: the first CPU we may use]",
       &C::dpdk_lcores},
      {"dpdk-hugepages",
       "dataplane dpdk: 1 takes DPDK's memory from hugepages, 0 from ordinary memory",
       &C::dpdk_hugepages},
      {"dpdk-memory", "dataplane dpdk: MiB of memory for DPDK", &C::dpdk_memory},
      {"dpdk-idle-sleep",
       "dataplane dpdk: microseconds to wait after a round of polls found nothing (0..100000; "
       "0: poll all the time)",
       &C::dpdk_idle_sleep},
      {"dpdk-inner",
       "dataplane dpdk: the interface, tap (DPDK's net_tap; faradayd answers ARP and ND on "
       "it) or tun (net_tun)",
       &C::dpdk_inner},
  };
}

// The one list of settings: TOML keys, command-line options and --help text.
const settings::Table<C>& table() {
  static const settings::Table<C> list = [] {
    settings::Table<C> l = {
        {"farad", "farad's address, HOST:PORT or [IPv6]:PORT (required; port 7450 if omitted)",
         &C::farad},
        {"farad-name", "The name farad's certificate must carry", &C::farad_name},
        {"ca", "PEM bundle of the cluster CA: farad and every node must chain to it (required)",
         &C::ca},
        {"cert",
         "PEM certificate of this node (required); its subject CN is the node's name in the "
         "cluster",
         &C::cert},
        {"key", "PEM private key of --cert (required)", &C::key},
        {"crl",
         "Optional PEM CRL; links from nodes it revokes are refused. Re-read with --ca, --cert "
         "and --key on SIGHUP, which also closes links whose certificate no longer verifies",
         &C::crl},
        {"private-key",
         "WireGuard private key file, created (mode 0600, atomically) when missing and kept "
         "across restarts [default: /var/lib/faraday/INTERFACE.key]",
         &C::private_key},
        {"interface", "Name of the WireGuard interface faradayd creates and manages",
         &C::interface},
        {"listen-port", "WireGuard UDP port", &C::listen_port},
        {"mtu", "MTU of the interface (the underlay's MTU minus 80 for IPv6, 60 for IPv4)",
         &C::mtu},
        {"announce",
         "Underlay endpoint(s) other nodes send WireGuard to, ADDR or ADDR:PORT (port: "
         "listen-port); repeatable [default: the local address that routes to farad; with "
         "dataplane dpdk, the dpdk-address(es)]",
         &C::announce},
        {"overlay",
         "This node's overlay address (required): put on the interface and announced as its "
         "/32 or /128",
         &C::overlay},
        {"container-prefix",
         "Optional prefix for this node's containers (faraday-cni), announced with the overlay; "
         "faradayd delivers what the mesh sends to it, dropping what no container holds",
         &C::container_prefix},
        {"control-listen",
         "Where other nodes reach this node's links (mutual TLS, pings), ADDR:PORT or "
         "[IPv6]:PORT; [::] takes IPv4 too (0.0.0.0 when the host has no IPv6). With an "
         "unspecified ADDR the first announced address is announced (with dataplane dpdk, "
         "the local address that routes to farad: the links stay on the host's network)",
         &C::control_listen},
        {"control-socket",
         "Local control socket (status for faradayctl, the CNI plugin) [default: "
         "/run/faraday/INTERFACE.sock]",
         &C::control_socket},
        {"container-state",
         "File keeping the containers' addresses across restarts, so none is handed out twice "
         "[default: /var/lib/faraday/INTERFACE.containers.json]",
         &C::container_state},
        {"ping-interval", "Seconds between pings on each link", &C::ping_interval},
        {"silence",
         "Seconds without hearing a peer on its link before asking farad whether it is gone; "
         "it is removed only if farad answers ABSENT",
         &C::silence},
        {"heartbeat", "Seconds between heartbeats to farad when idle; 0: what farad suggests",
         &C::heartbeat},
        {"reconnect-max",
         "Ceiling in seconds of the backoff between attempts to reach farad (jittered); keep it "
         "at or below the heartbeat so a restarted farad hears from every node quickly",
         &C::reconnect_max},
        {"keepalive",
         "WireGuard persistent keepalive to every peer, in seconds (0: off); it also starts the "
         "handshake as soon as a peer is added",
         &C::keepalive},
        {"aead",
         "Force an AEAD backend (sodium, ipsec-mb); default: the fastest that passes its "
         "known-answer "
         "self-test",
         &C::aead},
    };
    for (auto& setting : dataplane_settings()) l.push_back(setting);
    l.push_back({"log-level", "debug, info, warn or error", &C::log_level});
    return l;
  }();
  return list;
}

// HOST:PORT, [IPv6]:PORT or HOST; false if the port is not 1..65535.
bool split_host_port(const std::string& text, uint16_t default_port, std::string* host,
                     uint16_t* port) {
  std::string h = text;
  std::string p;
  if (!h.empty() && h.front() == '[') {
    size_t close = h.find(']');
    if (close == std::string::npos) return false;
    if (close + 1 < h.size()) {
      if (h[close + 1] != ':') return false;
      p = h.substr(close + 2);
    }
    h = h.substr(1, close - 1);
  } else if (std::count(h.begin(), h.end(), ':') == 1) {
    size_t colon = h.find(':');
    p = h.substr(colon + 1);
    h = h.substr(0, colon);
  }
  if (h.empty()) return false;
  *host = h;
  if (p.empty()) {
    *port = default_port;
    return true;
  }
  if (p.size() > 5 || p.find_first_not_of("0123456789") != std::string::npos) return false;
  unsigned long v = std::stoul(p);
  if (v == 0 || v > 65535) return false;
  *port = static_cast<uint16_t>(v);
  return true;
}

Status seconds(const char* name, double v, bool zero_ok, std::chrono::milliseconds* out) {
  if (!(v > 0 || (zero_ok && v == 0)) || v > 1e6 || (v > 0 && v < 0.01)) {
    return Error{fmt::format("{} = {}: want {} number of seconds (at least 0.01)", name, v,
                             zero_ok ? "0 or a" : "a positive")};
  }
  *out = std::chrono::milliseconds(static_cast<int64_t>(v * 1000));
  return {};
}

}  // namespace

void add_cluster_options(CLI::App& app, ClusterConfig* cli) {
  settings::add_options(app, table(), cli);
}

void apply_cluster_overrides(const CLI::App& app, const ClusterConfig& cli, ClusterConfig* out) {
  settings::apply_cli_overrides(app, table(), cli, out);
}

Status load_cluster_config(const std::string& path, ClusterConfig* out) {
  return settings::load_file(path, table(), "faradayd cluster", out);
}

Status load_cluster_config_text(std::string_view text, const std::string& source,
                                ClusterConfig* out) {
  return settings::load_text(text, source, table(), "faradayd cluster", out);
}

std::string cluster_config_text(const ClusterConfig& c) {
  return settings::to_text(table(), c);
}

namespace {

// announce: each an IP address (the WireGuard port implied), ADDR:PORT or [IPv6]:PORT.
Status parse_announce(const ClusterConfig& c, ClusterOptions* out) {
  out->announce.clear();
  for (const std::string& a : c.announce) {
    std::string host;
    uint16_t port = 0;
    std::optional<dataplane::Endpoint> ep;
    if (split_host_port(a, out->listen_port, &host, &port))
      ep = dataplane::Endpoint::parse(host.find(':') != std::string::npos
                                          ? fmt::format("[{}]:{}", host, port)
                                          : fmt::format("{}:{}", host, port));
    if (!ep) {
      return Error{fmt::format("announce {:?}: want an IP address, ADDR:PORT or [IPv6]:PORT", a)};
    }
    out->announce.push_back(*ep);
  }
  return {};
}

// overlay (one address) and container-prefix (a prefix with its host bits zero).
Status parse_overlay(const ClusterConfig& c, ClusterOptions* out) {
  auto overlay = dataplane::Prefix::parse(c.overlay);
  if (!overlay || overlay->cidr != overlay->max_cidr()) {
    return Error{
        fmt::format("overlay {:?}: want one IP address (announced as /32 or /128)", c.overlay)};
  }
  out->overlay = *overlay;
  out->container_prefix.reset();
  if (!c.container_prefix.empty()) {
    auto p = dataplane::Prefix::parse(c.container_prefix);
    // parse() masks the host bits away: compare with the address as written.
    auto written =
        dataplane::Prefix::parse(c.container_prefix.substr(0, c.container_prefix.find('/')));
    if (!p || !written || written->addr != p->addr) {
      return Error{
          fmt::format("container-prefix {:?}: want a prefix like 10.1.2.0/24, host bits zero",
                      c.container_prefix)};
    }
    out->container_prefix = *p;
  }
  return {};
}

// The timings, the link listener and the rest of the node-to-node side.
Status parse_links(const ClusterConfig& c, ClusterOptions* out) {
  std::string host;
  uint16_t port = 0;
  boost::system::error_code ec;
  if (!split_host_port(c.control_listen, 0, &host, &port) || port == 0 ||
      (boost::asio::ip::make_address(host, ec), ec)) {
    return Error{
        fmt::format("control-listen {:?}: want ADDR:PORT or [IPv6]:PORT", c.control_listen)};
  }
  out->control_listen = {boost::asio::ip::make_address(host), port};
  if (Status s = seconds("ping-interval", c.ping_interval, false, &out->ping_interval); !s) {
    return s;
  }
  if (Status s = seconds("silence", c.silence, false, &out->silence); !s) return s;
  if (Status s = seconds("heartbeat", c.heartbeat, true, &out->heartbeat); !s) return s;
  if (Status s = seconds("reconnect-max", c.reconnect_max, false, &out->reconnect_max); !s) {
    return s;
  }
  if (out->silence < 2 * out->ping_interval) {
    return Error{fmt::format("silence {} s must be at least twice ping-interval {} s", c.silence,
                             c.ping_interval)};
  }
  return {};
}

// dataplane, and the dpdk-* settings that go with "dpdk" (checked as they are
// at start-up, so a bad one is refused before anything starts).
Status parse_dataplane(const ClusterConfig& c, ClusterOptions* out) {
  out->dpdk.reset();
  const ClusterConfig defaults;
  const bool dpdk_set =
      !c.dpdk_port.empty() || !c.dpdk_address.empty() || !c.dpdk_gateway.empty() ||
      !c.dpdk_lcores.empty() || c.dpdk_hugepages != defaults.dpdk_hugepages ||
      c.dpdk_memory != defaults.dpdk_memory || c.dpdk_idle_sleep != defaults.dpdk_idle_sleep ||
      c.dpdk_inner != defaults.dpdk_inner;
  if (c.dataplane == "kernel") {
    if (dpdk_set)
      return Error{
          "dataplane \"kernel\" with dpdk-* settings: set dataplane = \"dpdk\" to use them"};
    return {};
  }
  if (c.dataplane != "dpdk")
    return Error{fmt::format("dataplane {:?}: want kernel or dpdk", c.dataplane)};
  if (c.dpdk_inner != "tap" && c.dpdk_inner != "tun")
    return Error{
        fmt::format("dpdk-inner {:?}: want tap or tun (the overlay address and the routes to the "
                    "members go on a kernel interface)",
                    c.dpdk_inner)};
  if (c.dpdk_hugepages > 1)
    return Error{fmt::format("dpdk-hugepages {}: want 0 or 1", c.dpdk_hugepages)};
  if (c.dpdk_memory < 64 || c.dpdk_memory > 1u << 20)
    return Error{fmt::format("dpdk-memory {}: want 64..1048576 MiB", c.dpdk_memory)};
  if (c.dpdk_idle_sleep > kMaxIdleSleepUs)
    return Error{
        fmt::format("dpdk-idle-sleep {}: want 0..{} us", c.dpdk_idle_sleep, kMaxIdleSleepUs)};
  DpdkOptions d;
  d.port = c.dpdk_port;
  d.addresses = c.dpdk_address;
  d.gateways = c.dpdk_gateway;
  d.listen_port = out->listen_port;
  d.lcores = c.dpdk_lcores;
  d.hugepages = c.dpdk_hugepages == 1;
  d.memory_mb = static_cast<unsigned>(c.dpdk_memory);
  d.idle_sleep_us = static_cast<unsigned>(c.dpdk_idle_sleep);
  d.inner = c.dpdk_inner;
  if (Status ok = check_dpdk_settings(out->ifname, out->mtu, d); !ok)
    return Error{"dataplane \"dpdk\": " + ok.error()};
  out->dpdk = std::move(d);
  return {};
}

}  // namespace

Result<ClusterOptions> to_cluster_options(const ClusterConfig& c) {
  ClusterOptions out;
  for (auto [name, value] : {std::pair{"farad", &c.farad},
                             {"ca", &c.ca},
                             {"cert", &c.cert},
                             {"key", &c.key},
                             {"overlay", &c.overlay}}) {
    if (value->empty()) {
      return Error{fmt::format("{} is required (--{} or `{} = \"...\"` in the config file)", name,
                               name, name)};
    }
  }
  if (!split_host_port(c.farad, proto::kFaradPort, &out.farad_host, &out.farad_port)) {
    return Error{fmt::format("farad {:?}: want HOST:PORT, [IPv6]:PORT or HOST", c.farad)};
  }
  out.farad_name = c.farad_name;
  out.tls = {c.ca, c.cert, c.key, c.crl};
  if (auto ok = dataplane::check_interface_name(c.interface); !ok)
    return Error{fmt::format("interface {:?}: {}", c.interface, ok.error())};
  out.ifname = c.interface;
  out.private_key =
      c.private_key.empty() ? "/var/lib/faraday/" + c.interface + ".key" : c.private_key;
  out.control_socket =
      c.control_socket.empty() ? "/run/faraday/" + c.interface + ".sock" : c.control_socket;
  out.container_state = c.container_state.empty()
                            ? "/var/lib/faraday/" + c.interface + ".containers.json"
                            : c.container_state;
  if (c.listen_port == 0 || c.listen_port > 65535) {
    return Error{fmt::format("listen-port {}: want 1..65535", c.listen_port)};
  }
  out.listen_port = static_cast<uint16_t>(c.listen_port);
  if (c.mtu < 576 || c.mtu > 65535 - 80) {
    return Error{fmt::format("mtu {}: want 576..65455", c.mtu)};
  }
  out.mtu = static_cast<uint32_t>(c.mtu);
  if (Status s = parse_announce(c, &out); !s) return s.failure();
  if (Status s = parse_overlay(c, &out); !s) return s.failure();
  if (Status s = parse_links(c, &out); !s) return s.failure();
  if (c.keepalive > 65535) {
    return Error{fmt::format("keepalive {}: want 0..65535 seconds", c.keepalive)};
  }
  out.keepalive = static_cast<uint16_t>(c.keepalive);
  out.aead = c.aead;
  if (c.workers > crypto::kMaxLanes) {
    return Error{fmt::format("workers {}: want 0..{} (0: one per CPU this process may use)",
                             c.workers, crypto::kMaxLanes)};
  }
  out.workers = static_cast<unsigned>(c.workers);
  if (Status s = parse_dataplane(c, &out); !s) return s.failure();
  if (!log::parse_level(c.log_level)) {
    return Error{fmt::format("log-level {:?}: want debug, info, warn or error", c.log_level)};
  }
  out.log_level = c.log_level;
  return out;
}

}  // namespace faraday::control
