// settings.h: farad's settings. Each has one name, used both as a key of the
// TOML configuration file (flat: `expiry = 30`) and as a command-line option
// (`--expiry 30`); the command line wins over the file, the file over the
// built-in default. Unknown keys and wrong types are errors.
#pragma once

#include <CLI/CLI.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "farad/server.h"

namespace faraday::farad {

struct Config {
  std::string listen = "0.0.0.0:" + std::to_string(proto::kFaradPort);
  std::string ca;
  std::string cert;
  std::string key;
  std::string crl;
  double expiry = 30;
  double disconnect_grace = 10;
  double idle_timeout = 0;
  double handshake_timeout = 10;
  double write_timeout = 30;
  double push_delay_ms = 20;
  uint64_t max_connections = 16384;
  std::string log_level = "info";
};

// Registers one option per setting on `app`, writing into *cli.
void add_config_options(CLI::App& app, Config* cli);
// Applies the options the user gave on the command line (after app.parse).
void apply_cli_overrides(const CLI::App& app, const Config& cli, Config* out);
// Reads a TOML file into *out (keys not in the file keep their value); an
// error naming the file, key and problem on failure.
Status load_config_file(const std::string& path, Config* out);
// The same from TOML text; `source` names it in errors.
Status load_config_text(std::string_view text, const std::string& source, Config* out);
// Checks values and builds the server's options; an error naming the setting
// if one is invalid.
Result<ServerOptions> to_server_options(const Config& c);
// The effective configuration, as a TOML file farad would accept.
std::string config_text(const Config& c);

}  // namespace faraday::farad
