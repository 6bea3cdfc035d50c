// cluster_settings.h: the settings of `faradayd cluster`, from a TOML file
// (flat: `farad = "10.0.0.1:7450"`) and the command line (`--farad
// 10.0.0.1:7450`); the command line wins over the file, the file over the
// defaults (common/settings_table.h). to_cluster_options() checks every value
// and turns the text into what the daemon uses.
#pragma once

#include <CLI/CLI.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "control/dpdk_standalone.h"
#include "dataplane/net.h"
#include "proto/node_info.h"
#include "proto/tls.h"
#include "result.h"

namespace faraday::control {

struct ClusterConfig {
  std::string farad;
  std::string farad_name = "farad";
  std::string ca;
  std::string cert;
  std::string key;
  std::string crl;
  std::string private_key;  // empty: /var/lib/faraday/IFNAME.key
  std::string interface = "faraday0";
  uint64_t listen_port = 51820;
  uint64_t mtu = 1420;
  std::vector<std::string> announce;
  std::string overlay;
  std::string container_prefix;
  std::string control_listen = "[::]:7451";
  std::string control_socket;   // empty: /run/faraday/IFNAME.sock
  std::string container_state;  // empty: /var/lib/faraday/IFNAME.containers.json
  double ping_interval = 1;
  double silence = 5;
  double heartbeat = 0;
  double reconnect_max = 10;
  uint64_t keepalive = 25;
  std::string aead;
  uint64_t workers = 0;
  std::string dataplane = "kernel";
  std::string dpdk_port;
  std::vector<std::string> dpdk_address;
  std::vector<std::string> dpdk_gateway;
  std::string dpdk_lcores;
  uint64_t dpdk_hugepages = 0;
  uint64_t dpdk_memory = 256;
  uint64_t dpdk_idle_sleep = 0;
  std::string dpdk_inner = "tap";
  std::string log_level = "info";
};

struct ClusterOptions {
  std::string farad_host;
  uint16_t farad_port = proto::kFaradPort;
  std::string farad_name;
  proto::TlsFiles tls;
  std::string private_key;
  std::string ifname;
  uint16_t listen_port = 51820;
  uint32_t mtu = 1420;
  // Underlay endpoints to announce; empty: the local address that routes to farad.
  std::vector<dataplane::Endpoint> announce;
  dataplane::Prefix overlay;  // a host prefix (/32 or /128)
  std::optional<dataplane::Prefix> container_prefix;
  std::string container_state;  // the containers' attachments (control/containers.h)
  boost::asio::ip::tcp::endpoint control_listen;
  std::string control_socket;
  std::chrono::milliseconds ping_interval{1000};
  std::chrono::milliseconds silence{5000};
  std::chrono::milliseconds heartbeat{0};  // 0: what farad suggests
  std::chrono::milliseconds reconnect_max{10000};
  uint16_t keepalive = 25;  // WireGuard persistent keepalive, seconds; 0: off
  std::string aead;
  unsigned workers = 0;  // cores sharing each burst's AEAD; 0: every CPU we may use
  // dataplane = "dpdk": the interface's underlay is a DPDK port
  // (dpdk_standalone.h), its UDP port listen_port; none: kernel sockets.
  std::optional<DpdkOptions> dpdk;
  std::string log_level;
};

void add_cluster_options(CLI::App& app, ClusterConfig* cli);
void apply_cluster_overrides(const CLI::App& app, const ClusterConfig& cli, ClusterConfig* out);
// Reads a TOML file into *out (keys not in the file keep their value); an
// error naming the file, key and problem otherwise.
Status load_cluster_config(const std::string& path, ClusterConfig* out);
// The same from TOML text; `source` names it in errors.
Status load_cluster_config_text(std::string_view text, const std::string& source,
                                ClusterConfig* out);
// The options, or an error naming the setting if a value is missing or wrong.
Result<ClusterOptions> to_cluster_options(const ClusterConfig& c);
std::string cluster_config_text(const ClusterConfig& c);

}  // namespace faraday::control
