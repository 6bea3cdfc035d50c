// cluster_settings_test.cpp: `faradayd cluster` settings (control/cluster_settings.h):
// defaults, TOML file then command line, every refusal of to_cluster_options
// naming its setting (table-driven), TOML type and key errors naming the file
// and key, and the TOML text the daemon writes loading back unchanged.
#include "control/cluster_settings.h"

#include "control/announcement.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace faraday::control {
namespace {

using namespace std::chrono_literals;

// The smallest configuration to_cluster_options accepts.
ClusterConfig minimal() {
  ClusterConfig c;
  c.farad = "10.0.0.1:7450";
  c.ca = "/etc/faraday/ca.pem";
  c.cert = "/etc/faraday/node.pem";
  c.key = "/etc/faraday/node.key";
  c.overlay = "10.200.0.1";
  return c;
}

// Parses `args` (without the program name) as the command line of a program
// with the cluster options.
void parse_cli(CLI::App& app, std::vector<std::string> args) {
  std::reverse(args.begin(), args.end());  // CLI11 takes the vector back to front
  app.parse(args);
}

TEST(ClusterSettings, Defaults) {
  ClusterConfig c;
  EXPECT_EQ(c.farad_name, "farad");
  EXPECT_EQ(c.interface, "faraday0");
  EXPECT_EQ(c.listen_port, 51820u);
  EXPECT_EQ(c.mtu, 1420u);
  EXPECT_EQ(c.control_listen, "[::]:7451");
  EXPECT_EQ(c.log_level, "info");

  auto checked = to_cluster_options(minimal());
  ASSERT_TRUE(checked.ok()) << checked.error();
  ClusterOptions o = *checked;
  EXPECT_EQ(o.farad_host, "10.0.0.1");
  EXPECT_EQ(o.farad_port, 7450);
  EXPECT_EQ(o.farad_name, "farad");
  EXPECT_EQ(o.tls.ca, "/etc/faraday/ca.pem");
  EXPECT_EQ(o.tls.cert, "/etc/faraday/node.pem");
  EXPECT_EQ(o.tls.key, "/etc/faraday/node.key");
  EXPECT_EQ(o.tls.crl, "");
  EXPECT_EQ(o.ifname, "faraday0");
  EXPECT_EQ(o.listen_port, 51820);
  EXPECT_EQ(o.mtu, 1420u);
  EXPECT_TRUE(o.announce.empty());
  EXPECT_EQ(o.overlay.to_string(), "10.200.0.1/32");
  EXPECT_FALSE(o.container_prefix.has_value());
  EXPECT_EQ(o.control_listen,
            boost::asio::ip::tcp::endpoint(boost::asio::ip::make_address("::"), 7451));
  EXPECT_EQ(o.ping_interval, 1000ms);
  EXPECT_EQ(o.silence, 5000ms);
  EXPECT_EQ(o.heartbeat, 0ms);
  EXPECT_EQ(o.reconnect_max, 10000ms);
  EXPECT_EQ(o.keepalive, 25);
  EXPECT_EQ(o.workers, 0u);  // one per CPU the process may use
  EXPECT_EQ(o.log_level, "info");
}

TEST(ClusterSettings, PathsDeriveFromInterface) {
  ClusterConfig c = minimal();
  c.interface = "mesh7";
  auto checked = to_cluster_options(c);
  ASSERT_TRUE(checked.ok()) << checked.error();
  ClusterOptions o = *checked;
  EXPECT_EQ(o.private_key, "/var/lib/faraday/mesh7.key");
  EXPECT_EQ(o.control_socket, "/run/faraday/mesh7.sock");

  c.private_key = "/srv/wg.key";
  c.control_socket = "/tmp/ctl.sock";
  checked = to_cluster_options(c);
  ASSERT_TRUE(checked.ok()) << checked.error();
  o = *checked;
  EXPECT_EQ(o.private_key, "/srv/wg.key");
  EXPECT_EQ(o.control_socket, "/tmp/ctl.sock");
}

TEST(ClusterSettings, FaradHostForms) {
  struct Case {
    const char* farad;
    const char* host;
    uint16_t port;
  };
  for (const Case& k :
       {Case{"farad.example", "farad.example", 7450},
        Case{"farad.example:9000", "farad.example", 9000}, Case{"[fd00::1]:7460", "fd00::1", 7460},
        Case{"[fd00::1]", "fd00::1", 7450}, Case{"fd00::2", "fd00::2", 7450}}) {
    ClusterConfig c = minimal();
    c.farad = k.farad;
    auto checked = to_cluster_options(c);
    ASSERT_TRUE(checked.ok()) << k.farad << ": " << checked.error();
    ClusterOptions o = *checked;
    EXPECT_EQ(o.farad_host, k.host) << k.farad;
    EXPECT_EQ(o.farad_port, k.port) << k.farad;
  }
}

TEST(ClusterSettings, FileThenCommandLine) {
  std::string path =
      (std::filesystem::temp_directory_path() / ("cluster-" + std::to_string(getpid()) + ".toml"))
          .string();
  {
    std::ofstream f(path);
    f << "farad = \"10.0.0.1:7450\"\n"
         "ca = \"/f/ca.pem\"\n"
         "cert = \"/f/node.pem\"\n"
         "key = \"/f/node.key\"\n"
         "overlay = \"10.200.0.9\"\n"
         "listen-port = 5000\n"
         "mtu = 1380\n"
         "announce = [\"192.0.2.1\", \"192.0.2.2:6000\"]\n"
         "ping-interval = 0.5\n"
         "silence = 3\n"
         "workers = 2\n"
         "log-level = \"debug\"\n";
  }
  ClusterConfig c;
  Status loaded = load_cluster_config(path, &c);
  ASSERT_TRUE(loaded.ok()) << loaded.error();
  std::remove(path.c_str());
  EXPECT_EQ(c.overlay, "10.200.0.9");
  EXPECT_EQ(c.listen_port, 5000u);
  EXPECT_EQ(c.mtu, 1380u);
  EXPECT_EQ(c.announce, (std::vector<std::string>{"192.0.2.1", "192.0.2.2:6000"}));
  EXPECT_DOUBLE_EQ(c.ping_interval, 0.5);
  EXPECT_EQ(c.interface, "faraday0");  // not in the file: the default stays

  CLI::App app;
  ClusterConfig cli;
  add_cluster_options(app, &cli);
  parse_cli(app, {"--listen-port", "6001", "--announce", "198.51.100.7", "--announce",
                  "198.51.100.8:7000", "--interface", "wgx", "--silence", "4.5", "--workers", "3"});
  apply_cluster_overrides(app, cli, &c);
  EXPECT_EQ(c.listen_port, 6001u);  // the command line wins
  EXPECT_EQ(c.announce, (std::vector<std::string>{"198.51.100.7", "198.51.100.8:7000"}));
  EXPECT_EQ(c.interface, "wgx");
  EXPECT_DOUBLE_EQ(c.silence, 4.5);
  EXPECT_EQ(c.mtu, 1380u);  // not on the command line: the file's value stays
  EXPECT_EQ(c.log_level, "debug");
  EXPECT_DOUBLE_EQ(c.ping_interval, 0.5);

  auto checked = to_cluster_options(c);
  ASSERT_TRUE(checked.ok()) << checked.error();
  ClusterOptions o = *checked;
  EXPECT_EQ(o.listen_port, 6001);
  ASSERT_EQ(o.announce.size(), 2u);
  EXPECT_EQ(o.announce[0].to_string(), "198.51.100.7:6001");  // no port: listen-port
  EXPECT_EQ(o.announce[1].to_string(), "198.51.100.8:7000");
  EXPECT_EQ(o.ping_interval, 500ms);
  EXPECT_EQ(o.silence, 4500ms);
  EXPECT_EQ(o.ifname, "wgx");
  EXPECT_EQ(o.private_key, "/var/lib/faraday/wgx.key");
  EXPECT_EQ(o.workers, 3u);  // the command line wins over the file's 2
}

TEST(ClusterSettings, AnnounceIpv6) {
  ClusterConfig c = minimal();
  c.listen_port = 51821;
  c.announce = {"[2001:db8::1]:7000", "2001:db8::2", "[2001:db8::3]"};
  auto checked = to_cluster_options(c);
  ASSERT_TRUE(checked.ok()) << checked.error();
  ClusterOptions o = *checked;
  ASSERT_EQ(o.announce.size(), 3u);
  EXPECT_EQ(o.announce[0], *dataplane::Endpoint::parse("[2001:db8::1]:7000"));
  EXPECT_EQ(o.announce[1], *dataplane::Endpoint::parse("[2001:db8::2]:51821"));
  EXPECT_EQ(o.announce[2], *dataplane::Endpoint::parse("[2001:db8::3]:51821"));
}

TEST(ClusterSettings, OverlayV6AndContainerPrefix) {
  ClusterConfig c = minimal();
  c.overlay = "fd00:200::1";
  c.container_prefix = "fd00:201::/64";
  auto checked = to_cluster_options(c);
  ASSERT_TRUE(checked.ok()) << checked.error();
  ClusterOptions o = *checked;
  EXPECT_EQ(o.overlay.to_string(), "fd00:200::1/128");
  ASSERT_TRUE(o.container_prefix.has_value());
  EXPECT_EQ(o.container_prefix->to_string(), "fd00:201::/64");
}

// Each case breaks one setting of a valid configuration; the refusal names it.
TEST(ClusterSettings, EveryRefusalNamesTheSetting) {
  struct Case {
    const char* what;
    void (*edit)(ClusterConfig&);
    const char* setting;  // the error starts with it
  };
  const Case cases[] = {
      {"no farad", [](ClusterConfig& c) { c.farad.clear(); }, "farad"},
      {"no ca", [](ClusterConfig& c) { c.ca.clear(); }, "ca"},
      {"no cert", [](ClusterConfig& c) { c.cert.clear(); }, "cert"},
      {"no key", [](ClusterConfig& c) { c.key.clear(); }, "key"},
      {"no overlay", [](ClusterConfig& c) { c.overlay.clear(); }, "overlay"},
      {"farad port 0", [](ClusterConfig& c) { c.farad = "10.0.0.1:0"; }, "farad"},
      {"farad port too big", [](ClusterConfig& c) { c.farad = "10.0.0.1:65536"; }, "farad"},
      {"farad port not a number", [](ClusterConfig& c) { c.farad = "10.0.0.1:http"; }, "farad"},
      {"farad empty host", [](ClusterConfig& c) { c.farad = ":7450"; }, "farad"},
      {"farad unclosed bracket", [](ClusterConfig& c) { c.farad = "[fd00::1:7450"; }, "farad"},
      {"announce not an address", [](ClusterConfig& c) { c.announce = {"node-a.example"}; },
       "announce"},
      {"announce bad port", [](ClusterConfig& c) { c.announce = {"192.0.2.1:0"}; }, "announce"},
      {"announce second bad",
       [](ClusterConfig& c) {
         c.announce = {"192.0.2.1", "192.0.2.300"};
       },
       "announce"},
      {"overlay /24", [](ClusterConfig& c) { c.overlay = "10.200.0.0/24"; }, "overlay"},
      {"overlay not an address", [](ClusterConfig& c) { c.overlay = "ten"; }, "overlay"},
      {"container prefix host bits", [](ClusterConfig& c) { c.container_prefix = "10.1.2.3/24"; },
       "container-prefix"},
      {"container prefix garbage", [](ClusterConfig& c) { c.container_prefix = "10.1.2.0/99"; },
       "container-prefix"},
      {"control-listen no port", [](ClusterConfig& c) { c.control_listen = "0.0.0.0"; },
       "control-listen"},
      {"control-listen a host name",
       [](ClusterConfig& c) { c.control_listen = "node.example:7451"; }, "control-listen"},
      {"control-listen port 0", [](ClusterConfig& c) { c.control_listen = "0.0.0.0:0"; },
       "control-listen"},
      {"silence below 2 pings",
       [](ClusterConfig& c) {
         c.ping_interval = 1;
         c.silence = 1.5;
       },
       "silence"},
      {"ping interval 0", [](ClusterConfig& c) { c.ping_interval = 0; }, "ping-interval"},
      {"ping interval negative", [](ClusterConfig& c) { c.ping_interval = -1; }, "ping-interval"},
      {"silence 0", [](ClusterConfig& c) { c.silence = 0; }, "silence"},
      {"heartbeat negative", [](ClusterConfig& c) { c.heartbeat = -2; }, "heartbeat"},
      {"reconnect-max 0", [](ClusterConfig& c) { c.reconnect_max = 0; }, "reconnect-max"},
      {"log level", [](ClusterConfig& c) { c.log_level = "verbose"; }, "log-level"},
      {"interface too long", [](ClusterConfig& c) { c.interface = "faraday012345678"; },
       "interface"},
      {"interface empty", [](ClusterConfig& c) { c.interface.clear(); }, "interface"},
      {"interface with slash", [](ClusterConfig& c) { c.interface = "wg/0"; }, "interface"},
      {"listen-port 0", [](ClusterConfig& c) { c.listen_port = 0; }, "listen-port"},
      {"listen-port too big", [](ClusterConfig& c) { c.listen_port = 70000; }, "listen-port"},
      {"mtu too small", [](ClusterConfig& c) { c.mtu = 500; }, "mtu"},
      {"keepalive too big", [](ClusterConfig& c) { c.keepalive = 65536; }, "keepalive"},
      {"workers above 64", [](ClusterConfig& c) { c.workers = 65; }, "workers"},
  };
  for (const Case& k : cases) {
    ClusterConfig c = minimal();
    k.edit(c);
    auto refused = to_cluster_options(c);
    ASSERT_FALSE(refused.ok()) << k.what;
    EXPECT_EQ(refused.error().rfind(std::string(k.setting) + " ", 0), 0u)
        << k.what << ": error " << refused.error() << " does not start with " << k.setting;
  }
  // The boundary values are accepted.
  ClusterConfig c = minimal();
  c.ping_interval = 1;
  c.silence = 2;
  c.interface = "faraday01234567";  // 15 characters, the most IFNAMSIZ allows
  c.heartbeat = 0;
  c.workers = 64;
  auto accepted = to_cluster_options(c);
  EXPECT_TRUE(accepted.ok()) << accepted.error();
}

// dataplane = "dpdk": every dpdk-* setting checked before anything starts, and
// the node announces its DPDK address for WireGuard and the host's for its links.
TEST(ClusterSettings, DpdkDataplane) {
  auto dpdk = [] {
    ClusterConfig c = minimal();
    c.dataplane = "dpdk";
    c.dpdk_port = "net_af_packet0,iface=ud0";
    c.dpdk_address = {"10.87.0.103/24"};
    c.listen_port = 51821;
    c.control_listen = "192.0.2.5:7451";
    return c;
  };
  // The refusal starts with the setting; those checked as at start-up (only
  // where DPDK is built) also name the option at fault.
  const struct {
    const char* what;
    void (*edit)(ClusterConfig&);
    const char* setting;
    const char* names = "";
  } cases[] = {
      {"kernel with a port", [](ClusterConfig& c) { c.dataplane = "kernel"; }, "dataplane"},
      {"kernel with idle sleep",
       [](ClusterConfig& c) {
         c = minimal();
         c.dpdk_idle_sleep = 100;
       },
       "dataplane"},
      {"unknown dataplane", [](ClusterConfig& c) { c.dataplane = "xdp"; }, "dataplane"},
      {"vhost inner", [](ClusterConfig& c) { c.dpdk_inner = "vhost"; }, "dpdk-inner"},
      {"hugepages 2", [](ClusterConfig& c) { c.dpdk_hugepages = 2; }, "dpdk-hugepages"},
      {"memory 16", [](ClusterConfig& c) { c.dpdk_memory = 16; }, "dpdk-memory"},
      {"idle sleep too long", [](ClusterConfig& c) { c.dpdk_idle_sleep = 100001; },
       "dpdk-idle-sleep"},
      {"no port", [](ClusterConfig& c) { c.dpdk_port.clear(); }, "dataplane", "--dpdk-port"},
      {"a port no EAL takes", [](ClusterConfig& c) { c.dpdk_port = "eth0"; }, "dataplane",
       "--dpdk-port"},
      {"lcores not a CPU list", [](ClusterConfig& c) { c.dpdk_lcores = "all"; }, "dataplane",
       "--dpdk-lcores"},
      {"no address", [](ClusterConfig& c) { c.dpdk_address.clear(); }, "dataplane",
       "--dpdk-address"},
      {"a subnet's own address", [](ClusterConfig& c) { c.dpdk_address = {"10.87.0.0/24"}; },
       "dataplane", "--dpdk-address"},
      {"a gateway off the link", [](ClusterConfig& c) { c.dpdk_gateway = {"10.1.0.1"}; },
       "dataplane", "--dpdk-gateway"},
      {"mtu over one mbuf", [](ClusterConfig& c) { c.mtu = 4000; }, "dataplane", "--mtu"},
  };
  for (const auto& k : cases) {
    if (*k.names && !dpdk_built()) continue;
    ClusterConfig c = dpdk();
    k.edit(c);
    auto refused = to_cluster_options(c);
    ASSERT_FALSE(refused.ok()) << k.what;
    EXPECT_EQ(refused.error().rfind(std::string(k.setting) + " ", 0), 0u)
        << k.what << ": error " << refused.error() << " does not start with " << k.setting;
    EXPECT_NE(refused.error().find(k.names), std::string::npos)
        << k.what << ": error " << refused.error() << " does not name " << k.names;
  }
  EXPECT_FALSE(to_cluster_options(minimal())->dpdk.has_value());  // the kernel path by default

  auto checked = to_cluster_options(dpdk());
  if (!dpdk_built()) {
    ASSERT_FALSE(checked.ok());
    EXPECT_NE(checked.error().find("without DPDK"), std::string::npos) << checked.error();
    return;
  }
  ASSERT_TRUE(checked.ok()) << checked.error();
  ASSERT_TRUE(checked->dpdk.has_value());
  EXPECT_EQ(checked->dpdk->port, "net_af_packet0,iface=ud0");
  EXPECT_EQ(checked->dpdk->listen_port, 51821);
  EXPECT_EQ(checked->dpdk->inner, "tap");
  crypto::Key key{};
  key[0] = 1;
  auto self = build_announcement(*checked, key);
  ASSERT_TRUE(self.ok()) << self.error();
  ASSERT_EQ(self->underlay_size(), 1);
  EXPECT_EQ(proto::endpoint_text(self->underlay(0)), "10.87.0.103:51821");
  EXPECT_EQ(proto::endpoint_text(self->control()), "192.0.2.5:7451");
}

TEST(ClusterSettings, MissingFieldSaysHowToGiveIt) {
  ClusterConfig c = minimal();
  c.overlay.clear();
  auto refused = to_cluster_options(c);
  ASSERT_FALSE(refused.ok());
  const std::string& error = refused.error();
  EXPECT_NE(error.find("--overlay"), std::string::npos) << error;
  EXPECT_NE(error.find("overlay = "), std::string::npos) << error;
}

TEST(ClusterSettings, TomlErrorsNameFileAndKey) {
  struct Case {
    const char* text;
    const char* key;
  };
  for (const Case& k :
       {Case{"colour = \"blue\"\n", "colour"}, Case{"listen-port = \"51820\"\n", "listen-port"},
        Case{"ping-interval = \"1\"\n", "ping-interval"}, Case{"announce = [1, 2]\n", "announce"},
        Case{"announce = \"192.0.2.1\"\n", "announce"}, Case{"farad = 7450\n", "farad"},
        Case{"mtu = -1\n", "mtu"}}) {
    ClusterConfig c;
    Status loaded = load_cluster_config_text(k.text, "/etc/faraday/cluster.toml", &c);
    ASSERT_FALSE(loaded.ok()) << k.text;
    const std::string& error = loaded.error();
    EXPECT_NE(error.find("/etc/faraday/cluster.toml"), std::string::npos) << error;
    EXPECT_NE(error.find(std::string("\"") + k.key + "\""), std::string::npos) << error;
    EXPECT_NE(error.find("faradayd cluster --help"), std::string::npos) << error;
  }
  // A syntax error names the file and the line.
  ClusterConfig c;
  Status syntax = load_cluster_config_text("mtu = 1400\nfarad = \n", "x.toml", &c);
  ASSERT_FALSE(syntax.ok());
  EXPECT_EQ(syntax.error().rfind("x.toml:2:", 0), 0u) << syntax.error();
  // A missing file names the file.
  Status missing = load_cluster_config("/nonexistent/cluster.toml", &c);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().find("/nonexistent/cluster.toml"), std::string::npos)
      << missing.error();
}

TEST(ClusterSettings, TextLoadsBackUnchanged) {
  ClusterConfig c = minimal();
  c.farad = "[fd00::1]:7450";
  c.announce = {"192.0.2.1", "[2001:db8::1]:7000"};
  c.container_prefix = "10.1.2.0/24";
  c.crl = "/etc/faraday/crl \"quoted\".pem";  // escaped as TOML wants
  c.ping_interval = 0.25;
  c.silence = 2.5;
  c.listen_port = 4242;
  std::string text = cluster_config_text(c);

  ClusterConfig back;
  Status loaded = load_cluster_config_text(text, "written.toml", &back);
  ASSERT_TRUE(loaded.ok()) << loaded.error() << "\n" << text;
  EXPECT_EQ(cluster_config_text(back), text);
  EXPECT_EQ(back.crl, c.crl);
  EXPECT_EQ(back.announce, c.announce);
  EXPECT_DOUBLE_EQ(back.ping_interval, 0.25);
  EXPECT_EQ(back.listen_port, 4242u);
  // Defaults load back too (empty strings and lists included).
  ClusterConfig defaults_back;
  loaded = load_cluster_config_text(cluster_config_text(ClusterConfig{}), "d.toml", &defaults_back);
  ASSERT_TRUE(loaded.ok()) << loaded.error();
  EXPECT_EQ(cluster_config_text(defaults_back), cluster_config_text(ClusterConfig{}));
}

}  // namespace
}  // namespace faraday::control
