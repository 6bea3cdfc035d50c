// settings_test.cpp: farad's TOML file, command-line overrides and checks.
#include <gtest/gtest.h>

#include <fstream>

#include "farad/settings.h"
#include "tests/lib/pki.h"

namespace faraday::farad {
namespace {

struct Parsed {
  Status loaded;
  Config config;
};

Parsed parse(const std::string& toml, std::vector<std::string> args) {
  testing::TempDir dir;
  std::string path = dir.path() + "/farad.toml";
  std::ofstream(path) << toml;
  CLI::App app;
  Config cli;
  add_config_options(app, &cli);
  std::vector<std::string> argv_rev(args.rbegin(), args.rend());
  app.parse(argv_rev);
  Parsed p;
  p.loaded = load_config_file(path, &p.config);
  if (p.loaded) apply_cli_overrides(app, cli, &p.config);
  return p;
}

TEST(Settings, FileThenCommandLine) {
  auto p = parse(
      "listen = \"127.0.0.1:9000\"\nca = \"/ca\"\ncert = \"/c\"\nkey = \"/k\"\n"
      "expiry = 12\nmax-connections = 99\n",
      {"--expiry", "7.5", "--crl", "/crl"});
  ASSERT_TRUE(p.loaded.ok()) << p.loaded.error();
  EXPECT_EQ(p.config.listen, "127.0.0.1:9000");
  EXPECT_EQ(p.config.expiry, 7.5);  // the command line wins
  EXPECT_EQ(p.config.crl, "/crl");
  EXPECT_EQ(p.config.max_connections, 99u);
  EXPECT_EQ(p.config.handshake_timeout, 10);  // default kept
  auto checked = to_server_options(p.config);
  ASSERT_TRUE(checked.ok()) << checked.error();
  const ServerOptions& o = *checked;
  EXPECT_EQ(o.address, "127.0.0.1");
  EXPECT_EQ(o.port, 9000);
  EXPECT_EQ(o.expiry, std::chrono::milliseconds(7500));
  EXPECT_EQ(o.tls.crl, "/crl");
  // What --print-config prints is a file farad reads back to the same values.
  auto again = parse(config_text(p.config), {});
  ASSERT_TRUE(again.loaded.ok()) << again.loaded.error();
  EXPECT_EQ(config_text(again.config), config_text(p.config));
}

TEST(Settings, FileErrorsNameTheProblem) {
  struct Case {
    const char* toml;
    const char* says;
  } cases[] = {
      {"expiri = 3\n", "unknown setting \"expiri\""},
      {"expiry = \"3\"\n", "setting \"expiry\" has the wrong type"},
      {"max-connections = -1\n", "\"max-connections\" has the wrong type"},
      {"[tls]\nca = \"x\"\n", "unknown setting \"tls\""},
      {"listen = \n", "farad.toml:1"},
  };
  for (const auto& c : cases) {
    auto p = parse(c.toml, {});
    ASSERT_FALSE(p.loaded.ok()) << c.toml;
    EXPECT_NE(p.loaded.error().find(c.says), std::string::npos)
        << c.toml << " -> " << p.loaded.error();
  }
}

TEST(Settings, ValuesAreChecked) {
  Config base;
  base.ca = "/ca";
  base.cert = "/c";
  base.key = "/k";
  auto o = to_server_options(base);
  ASSERT_TRUE(o.ok()) << o.error();
  EXPECT_EQ(o->port, 7450);
  EXPECT_EQ(o->address, "0.0.0.0");
  struct Case {
    std::function<void(Config&)> set;
    const char* says;
  } cases[] = {
      {[](Config& c) { c.ca.clear(); }, "ca is required"},
      {[](Config& c) { c.listen = "127.0.0.1"; }, "listen"},
      {[](Config& c) { c.listen = "::1:80"; }, "listen"},
      {[](Config& c) { c.expiry = 0; }, "expiry"},
      {[](Config& c) { c.write_timeout = -1; }, "write-timeout"},
      {[](Config& c) { c.max_connections = 0; }, "max-connections"},
      {[](Config& c) { c.log_level = "loud"; }, "log-level"},
  };
  for (const auto& c : cases) {
    Config bad = base;
    c.set(bad);
    auto refused = to_server_options(bad);
    ASSERT_FALSE(refused.ok()) << c.says;
    EXPECT_NE(refused.error().find(c.says), std::string::npos) << refused.error();
  }
  Config v6 = base;
  v6.listen = "[::1]:0";
  o = to_server_options(v6);
  ASSERT_TRUE(o.ok()) << o.error();
  EXPECT_EQ(o->address, "::1");
  EXPECT_EQ(o->port, 0);
}

}  // namespace
}  // namespace faraday::farad
