// settings.cpp: see settings.h.
#include "farad/settings.h"

#include <fmt/core.h>

#include "common/log.h"
#include "common/settings_table.h"
#include "proto/node_info.h"

namespace faraday::farad {

namespace {

// The one list of settings: TOML keys, command-line options and --help text.
const faraday::settings::Table<Config>& settings() {
  static const faraday::settings::Table<Config> list = {
      {"listen", "Address and port to accept node connections on: IPv4 ADDR:PORT or [IPv6]:PORT",
       &Config::listen},
      {"ca", "PEM bundle of the CA(s) node certificates must chain to (required)", &Config::ca},
      {"cert",
       "PEM certificate (chain) farad presents; nodes check it for the name 'farad' "
       "(required)",
       &Config::cert},
      {"key", "PEM private key of --cert (required)", &Config::key},
      {"crl",
       "Optional PEM CRL file; node certificates it revokes are refused. Re-read with the "
       "other TLS files on SIGHUP, which also closes connections whose certificate it "
       "now revokes",
       &Config::crl},
      {"expiry",
       "Seconds without any message from a member before farad removes it; also how "
       "long after start farad answers UNKNOWN for nodes that have not re-joined. "
       "Joined.heartbeat_ms suggests a third of it",
       &Config::expiry},
      {"disconnect-grace",
       "Seconds a member whose connection closed without leaving (its daemon crashed, or "
       "its connection broke) stays before farad answers ABSENT for it, unless it reconnects; "
       "at most the expiry window. Peers ask only about peers they cannot hear, so a node "
       "cut off from farad alone is never removed",
       &Config::disconnect_grace},
      {"idle-timeout",
       "Seconds without any message before a connection is closed; 0 means the "
       "expiry window",
       &Config::idle_timeout},
      {"handshake-timeout", "Seconds a new connection has to finish the TLS handshake",
       &Config::handshake_timeout},
      {"write-timeout",
       "Seconds a connection may leave farad's output unread before it is "
       "closed",
       &Config::write_timeout},
      {"push-delay-ms",
       "Milliseconds to gather membership changes before pushing them to idle "
       "connections (rounds are also never closer than one round's duration)",
       &Config::push_delay_ms},
      {"max-connections",
       "Most connections (handshaking or established) at once; more are "
       "refused. farad raises its open-file limit to the hard limit at start",
       &Config::max_connections},
      {"log-level", "debug, info, warn or error", &Config::log_level},
  };
  return list;
}

}  // namespace

void add_config_options(CLI::App& app, Config* cli) {
  faraday::settings::add_options(app, settings(), cli);
}

void apply_cli_overrides(const CLI::App& app, const Config& cli, Config* out) {
  faraday::settings::apply_cli_overrides(app, settings(), cli, out);
}

Status load_config_file(const std::string& path, Config* out) {
  return faraday::settings::load_file(path, settings(), "farad", out);
}

Status load_config_text(std::string_view text, const std::string& source, Config* out) {
  return faraday::settings::load_text(text, source, settings(), "farad", out);
}

Result<ServerOptions> to_server_options(const Config& c) {
  ServerOptions out;
  // ADDR:PORT or [IPv6]:PORT; port 0 picks any free port.
  size_t colon = c.listen.rfind(':');
  std::string host = colon == std::string::npos ? "" : c.listen.substr(0, colon);
  auto probe = proto::parse_endpoint(host + ":1");
  auto port = colon == std::string::npos
                  ? std::nullopt
                  : proto::parse_endpoint("0.0.0.0:" + c.listen.substr(colon + 1));
  bool port_zero = colon != std::string::npos && c.listen.substr(colon + 1) == "0";
  if (!probe || (!port && !port_zero)) {
    return Error{fmt::format("listen {:?}: want ADDR:PORT or [IPv6]:PORT", c.listen)};
  }
  if (host.size() >= 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
  out.address = host;
  out.port = port_zero ? 0 : static_cast<uint16_t>(port->port());
  for (auto [name, value] : {std::pair{"ca", &c.ca}, {"cert", &c.cert}, {"key", &c.key}}) {
    if (value->empty()) {
      return Error{fmt::format("{} is required (--{} or `{} = \"...\"` in the config file)", name,
                               name, name)};
    }
  }
  out.tls = {c.ca, c.cert, c.key, c.crl};
  struct Timing {
    const char* name;
    double seconds;
    bool zero_ok;
    Duration* out;
  };
  for (const Timing& t : {Timing{"expiry", c.expiry, false, &out.expiry},
                          {"disconnect-grace", c.disconnect_grace, false, &out.disconnect_grace},
                          {"idle-timeout", c.idle_timeout, true, &out.idle_timeout},
                          {"handshake-timeout", c.handshake_timeout, false, &out.handshake_timeout},
                          {"write-timeout", c.write_timeout, false, &out.write_timeout},
                          {"push-delay-ms", c.push_delay_ms / 1000.0, true, &out.push_delay}}) {
    if (!(t.seconds > 0 || (t.zero_ok && t.seconds == 0)) || t.seconds > 1e7) {
      return Error{fmt::format("{} = {}: want a positive number of seconds", t.name, t.seconds)};
    }
    *t.out = std::chrono::duration_cast<Duration>(std::chrono::duration<double>(t.seconds));
  }
  if (c.max_connections == 0) {
    return Error{"max-connections must be at least 1"};
  }
  out.max_connections = c.max_connections;
  if (!log::parse_level(c.log_level)) {
    return Error{fmt::format("log-level {:?}: want debug, info, warn or error", c.log_level)};
  }
  return out;
}

std::string config_text(const Config& c) {
  return faraday::settings::to_text(settings(), c);
}

}  // namespace faraday::farad
