// binary_test.cpp: the farad executable itself: --help documents every option,
// the TOML file and command-line overrides, configuration errors, and a run
// with SIGHUP (CRL reload closing a revoked member), SIGUSR1 and SIGTERM.
#include <fmt/core.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <fstream>
#include <sstream>

#include "harness.h"
#include "tests/lib/programs.h"

namespace faraday::testing {
namespace {

using ::testing::HasSubstr;

// Starts farad with `args`; stdout and stderr go to files in `dir`.
pid_t spawn_farad(const std::string& dir, std::vector<std::string> args) {
  return spawn_program(program_path("FARAD"), std::move(args), dir + "/out", dir + "/err");
}

ProgramRun run_farad(std::vector<std::string> args) {
  return run_program(program_path("FARAD"), std::move(args));
}

TEST(FaradBinary, HelpExplainsEveryOption) {
  auto r = run_farad({"--help"});
  EXPECT_EQ(r.status, 0);
  for (const char* opt : {"--config",
                          "--print-config",
                          "--listen",
                          "--ca",
                          "--cert",
                          "--key",
                          "--crl",
                          "--expiry",
                          "--idle-timeout",
                          "--handshake-timeout",
                          "--write-timeout",
                          "--push-delay-ms",
                          "--max-connections",
                          "--log-level",
                          "--version",
                          "SIGHUP",
                          "SIGUSR1",
                          "TOML",
                          "Common Name",
                          "UNKNOWN"}) {
    EXPECT_THAT(r.out, HasSubstr(opt));
  }
  // Every option line carries an explanation, not just a type.
  std::istringstream lines(r.out);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("  --", 0) == 0) {
      EXPECT_GT(line.size(), 45u) << line;
    }
  }
}

TEST(FaradBinary, ConfigFileWithCommandLineOverrides) {
  TempDir dir;
  std::string path = dir.path() + "/farad.toml";
  std::ofstream(path) << "listen = \"127.0.0.1:7999\"\nca = \"/ca.pem\"\ncert = \"/c.pem\"\n"
                         "key = \"/k.pem\"\nexpiry = 12\n";
  auto r = run_farad({"--config", path, "--expiry", "7", "--print-config"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("listen = \"127.0.0.1:7999\""));
  EXPECT_THAT(r.out, HasSubstr("expiry = 7.0\n"));
  EXPECT_THAT(r.out, HasSubstr("ca = \"/ca.pem\""));

  std::ofstream(path) << "expiri = 12\n";
  r = run_farad({"--config", path});
  EXPECT_EQ(r.status, 2);
  EXPECT_THAT(r.err, HasSubstr("unknown setting \"expiri\""));

  r = run_farad({"--ca", "/x"});
  EXPECT_EQ(r.status, 2);
  EXPECT_THAT(r.err, HasSubstr("cert is required"));

  r = run_farad({"--ca", "/nonexistent/ca.pem", "--cert", "/c", "--key", "/k"});
  EXPECT_EQ(r.status, 1);
  EXPECT_THAT(r.err, HasSubstr("/nonexistent/ca.pem"));
}

TEST(FaradBinary, SighupReloadsTheCrlAndSigtermStops) {
  Cluster c;  // PKI and a client loop; farad runs as its own process
  TempDir dir;
  std::string crl = c.tmp.path() + "/crl.pem";
  c.pki.write_crl(crl, {});
  std::string conf = dir.path() + "/farad.toml";
  std::ofstream(conf) << fmt::format(
      "listen = \"127.0.0.1:0\"\nca = \"{}\"\ncert = \"{}\"\nkey = \"{}\"\ncrl = \"{}\"\n",
      c.pki.ca_path(), c.farad_id.cert_path, c.farad_id.key_path, crl);
  pid_t pid = spawn_farad(dir.path(), {"--config", conf});
  // farad logs "farad listening on 127.0.0.1:PORT ...".
  const std::string marker = "listening on 127.0.0.1:";
  std::string err;
  ASSERT_TRUE(c.run_until([&] {
    err = slurp(dir.path() + "/err");
    return err.find(marker) != std::string::npos;
  })) << err;
  uint16_t port = static_cast<uint16_t>(std::stoi(err.substr(err.find(marker) + marker.size())));
  auto tweak = [port](control::FaradClientOptions& o) { o.port = port; };
  auto& a = c.node("alpha", 1, true, tweak);
  auto& b = c.node("beta", 2, true, tweak);
  ASSERT_TRUE(c.run_until([&] { return a.peers.count("beta") && b.peers.count("alpha"); }));

  c.pki.write_crl(crl, {b.id.cert.get()});
  kill(pid, SIGHUP);
  ASSERT_TRUE(c.run_until([&] { return !b.errors.empty(); }));
  EXPECT_EQ(b.errors[0].code(), proto::Error::REVOKED);
  EXPECT_TRUE(a.client->joined());
  EXPECT_EQ(c.query(a, "alpha"), proto::PRESENT);

  kill(pid, SIGUSR1);
  kill(pid, SIGTERM);
  int st = 0;
  ASSERT_TRUE(c.run_until([&] { return waitpid(pid, &st, WNOHANG) == pid; }));
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  err = slurp(dir.path() + "/err");
  EXPECT_THAT(err, HasSubstr("TLS configuration reloaded"));
  EXPECT_THAT(err, HasSubstr("node=beta: certificate no longer valid after TLS reload: "
                             "certificate revoked"));
  EXPECT_THAT(err, HasSubstr("membership event=join node=alpha"));
  EXPECT_THAT(err, HasSubstr("stopping on signal 15"));
  EXPECT_THAT(err, HasSubstr("closed.certificate_invalidated=1"));
  b.client->stop();
}

}  // namespace
}  // namespace faraday::testing
