// pki_test.cpp: the operator's CA (faradayctl/pki.h) and faradayctl: CA init,
// issuing (chain, CN, SAN, EKU, serials, name rules), revocation and the CRL
// checked with OpenSSL's own verifier, the command line, and end to end:
// faradayctl's certificates against a real farad process over mutual TLS,
// before and after a revocation reaches it (CRL + SIGHUP).
#include "faradayctl/pki.h"

#include <fcntl.h>
#include <fmt/core.h>
#include <gtest/gtest.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "control/farad_client.h"
#include "proto/node_info.h"
#include "proto/openssl_ptr.h"
#include "proto/tls.h"
#include "tests/lib/io_loop.h"
#include "tests/lib/programs.h"
#include "tests/lib/temp_dir.h"

namespace faraday::faradayctl::pki {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using control::FaradClient;
using control::FaradClientOptions;

using proto::CrlPtr;
using proto::PkeyPtr;
using proto::StoreCtxPtr;
using proto::StorePtr;
using proto::X509Ptr;
using testing::ProgramRun;
using testing::slurp;
using testing::TempDir;

// The value of a CA operation the test needs to succeed; a test failure (and
// an empty value, which the checks after it then trip on) if it does not.
template <typename T>
T must(Result<T> result) {
  if (!result) {
    ADD_FAILURE() << result.error();
    return T{};
  }
  return std::move(*result);
}
void must(const Status& status) {
  if (!status) ADD_FAILURE() << status.error();
}

// One PEM object from `path`, read with `read` (PEM_read_X509, ...); null if
// the file cannot be opened or holds none.
template <typename Ptr, typename Read>
Ptr read_pem(const std::string& path, Read read) {
  FILE* f = fopen(path.c_str(), "r");
  if (!f) return nullptr;
  Ptr p(read(f, nullptr, nullptr, nullptr));
  fclose(f);
  return p;
}

X509Ptr load_cert(const std::string& path) {
  return read_pem<X509Ptr>(path, PEM_read_X509);
}
PkeyPtr load_key(const std::string& path) {
  return read_pem<PkeyPtr>(path, PEM_read_PrivateKey);
}
CrlPtr load_crl(const std::string& path) {
  return read_pem<CrlPtr>(path, PEM_read_X509_CRL);
}

mode_t file_mode(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(stat(path.c_str(), &st), 0) << path;
  return st.st_mode & 07777;
}

// X509_verify_cert of `leaf` against the CA (and `crl`, with CRL checking)
// for `purpose`; X509_V_OK or the error.
int verify(X509* ca, X509* leaf, int purpose, X509_CRL* crl = nullptr) {
  StorePtr store(X509_STORE_new());
  X509_STORE_add_cert(store.get(), ca);
  if (crl) {
    X509_STORE_add_crl(store.get(), crl);
    X509_STORE_set_flags(store.get(), X509_V_FLAG_CRL_CHECK);
  }
  StoreCtxPtr ctx(X509_STORE_CTX_new());
  X509_STORE_CTX_init(ctx.get(), store.get(), leaf, nullptr);
  X509_STORE_CTX_set_purpose(ctx.get(), purpose);
  int ok = X509_verify_cert(ctx.get());
  int err = X509_STORE_CTX_get_error(ctx.get());
  return ok == 1 ? X509_V_OK : (err == X509_V_OK ? -1 : err);
}

bool extension_critical(X509* cert, int nid) {
  int idx = X509_get_ext_by_NID(cert, nid, -1);
  return idx >= 0 && X509_EXTENSION_get_critical(X509_get_ext(cert, idx)) == 1;
}

uint64_t serial_of(X509* cert) {
  uint64_t v = 0;
  EXPECT_EQ(ASN1_INTEGER_get_uint64(&v, X509_get0_serialNumber(cert)), 1);
  return v;
}

uint64_t crl_number(X509_CRL* crl) {
  auto* n = static_cast<ASN1_INTEGER*>(X509_CRL_get_ext_d2i(crl, NID_crl_number, nullptr, nullptr));
  uint64_t v = 0;
  if (n) ASN1_INTEGER_get_uint64(&v, n);
  ASN1_INTEGER_free(n);
  return v;
}

// --- CA init ----------------------------------------------------------------

TEST(PkiCa, InitWritesKeyCertificateIndexAndCounters) {
  TempDir tmp;
  std::string dir = tmp.path() + "/ca";
  must(init_ca(dir, "Test CA", 30));
  EXPECT_EQ(file_mode(dir), 0700u);
  EXPECT_EQ(file_mode(ca_key_path(dir)), 0600u);
  EXPECT_TRUE(must(read_index(dir)).empty());
  EXPECT_EQ(slurp(dir + "/serial"), "02\n");
  EXPECT_EQ(slurp(dir + "/crlnumber"), "1\n");
  // No temporary files left behind.
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    EXPECT_EQ(e.path().string().find(".tmp."), std::string::npos) << e.path();
  }

  X509Ptr ca = load_cert(ca_cert_path(dir));
  PkeyPtr key = load_key(ca_key_path(dir));
  ASSERT_TRUE(ca && key);
  EXPECT_EQ(X509_check_private_key(ca.get(), key.get()), 1);
  EXPECT_EQ(EVP_PKEY_get_bits(key.get()), 256);
  EXPECT_EQ(X509_check_ca(ca.get()), 1);
  EXPECT_TRUE(extension_critical(ca.get(), NID_basic_constraints));
  EXPECT_EQ(X509_get_key_usage(ca.get()), static_cast<uint32_t>(KU_KEY_CERT_SIGN | KU_CRL_SIGN));
  EXPECT_EQ(X509_verify(ca.get(), key.get()), 1);  // self-signed
  char cn[64] = "";
  X509_NAME_get_text_by_NID(X509_get_subject_name(ca.get()), NID_commonName, cn, sizeof(cn));
  EXPECT_STREQ(cn, "Test CA");
  int days = 0, secs = 0;
  ASSERT_EQ(ASN1_TIME_diff(&days, &secs, nullptr, X509_get0_notAfter(ca.get())), 1);
  EXPECT_TRUE(days == 29 || days == 30) << days;
}

TEST(PkiCa, InitRefusesToOverwrite) {
  TempDir tmp;
  must(init_ca(tmp.path()));
  std::string key_before = slurp(ca_key_path(tmp.path()));
  std::string cert_before = slurp(ca_cert_path(tmp.path()));
  Status again = init_ca(tmp.path());
  ASSERT_FALSE(again.ok()) << "second init succeeded";
  EXPECT_EQ(again.failure().reason, Error::Reason::kExists);
  EXPECT_NE(again.error().find("ca.key exists"), std::string::npos) << again.error();
  EXPECT_EQ(slurp(ca_key_path(tmp.path())), key_before);
  EXPECT_EQ(slurp(ca_cert_path(tmp.path())), cert_before);

  // A lone key (a half-restored backup) is not overwritten either.
  TempDir other;
  std::ofstream(ca_key_path(other.path())) << "precious";
  EXPECT_FALSE(init_ca(other.path()).ok());
  EXPECT_EQ(slurp(ca_key_path(other.path())), "precious");
}

TEST(PkiCa, OperationsWithoutACaSayHowToMakeOne) {
  TempDir tmp;
  auto issued = issue(tmp.path(), "alpha");
  ASSERT_FALSE(issued.ok());
  EXPECT_EQ(issued.failure().reason, Error::Reason::kNotFound);
  EXPECT_NE(issued.error().find("faradayctl ca init"), std::string::npos);
  EXPECT_FALSE(write_crl(tmp.path()).ok());
  EXPECT_FALSE(init_ca(tmp.path(), "x", 0).ok());
}

// --- issue ------------------------------------------------------------------

TEST(PkiIssue, NodeCertificateChainsAndCarriesItsName) {
  TempDir tmp;
  must(init_ca(tmp.path()));
  Issued out = must(issue(tmp.path(), "storage-01.rack2", {.out_prefix = "", .days = 10}));
  EXPECT_EQ(out.cert_path, tmp.path() + "/storage-01.rack2.pem");
  EXPECT_EQ(file_mode(out.key_path), 0600u);

  X509Ptr ca = load_cert(ca_cert_path(tmp.path()));
  X509Ptr cert = load_cert(out.cert_path);
  PkeyPtr key = load_key(out.key_path);
  ASSERT_TRUE(ca && cert && key);
  EXPECT_EQ(X509_check_private_key(cert.get(), key.get()), 1);
  EXPECT_EQ(verify(ca.get(), cert.get(), X509_PURPOSE_SSL_CLIENT), X509_V_OK);
  EXPECT_EQ(verify(ca.get(), cert.get(), X509_PURPOSE_SSL_SERVER), X509_V_OK);
  // farad's own rule for the CN.
  auto name = proto::certificate_name(cert.get());
  ASSERT_TRUE(name.ok()) << name.error();
  EXPECT_EQ(*name, "storage-01.rack2");
  EXPECT_EQ(X509_check_host(cert.get(), "storage-01.rack2", 0, 0, nullptr), 1);
  EXPECT_EQ(X509_get_extended_key_usage(cert.get()),
            static_cast<uint32_t>(XKU_SSL_CLIENT | XKU_SSL_SERVER));
  EXPECT_EQ(X509_check_ca(cert.get()), 0);
  EXPECT_EQ(serial_of(cert.get()), out.entry.serial);
  int days = 0, secs = 0;
  ASSERT_EQ(ASN1_TIME_diff(&days, &secs, nullptr, X509_get0_notAfter(cert.get())), 1);
  EXPECT_TRUE(days == 9 || days == 10) << days;

  auto index = must(read_index(tmp.path()));
  ASSERT_EQ(index.size(), 1u);
  EXPECT_EQ(index[0].name, "storage-01.rack2");
  EXPECT_EQ(index[0].serial, out.entry.serial);
  EXPECT_EQ(index[0].not_after, out.entry.not_after);
  EXPECT_FALSE(index[0].revoked_at);
}

TEST(PkiIssue, FaradCertificateIsServerOnly) {
  TempDir tmp;
  must(init_ca(tmp.path()));
  X509Ptr ca = load_cert(ca_cert_path(tmp.path()));
  for (const auto& [name, server] : {std::pair{"farad", false}, std::pair{"coord-1", true}}) {
    Issued out = must(issue(tmp.path(), name, {.out_prefix = "", .days = 30, .server = server}));
    X509Ptr cert = load_cert(out.cert_path);
    ASSERT_TRUE(cert);
    EXPECT_EQ(X509_get_extended_key_usage(cert.get()), static_cast<uint32_t>(XKU_SSL_SERVER));
    EXPECT_EQ(X509_check_host(cert.get(), name, 0, 0, nullptr), 1);
    EXPECT_EQ(verify(ca.get(), cert.get(), X509_PURPOSE_SSL_SERVER), X509_V_OK);
    EXPECT_EQ(verify(ca.get(), cert.get(), X509_PURPOSE_SSL_CLIENT), X509_V_ERR_INVALID_PURPOSE);
  }
}

TEST(PkiIssue, SerialsAreUniqueAcrossCertificatesAndReissues) {
  TempDir tmp;
  must(init_ca(tmp.path()));
  std::set<uint64_t> serials{1};  // the CA's own
  for (int i = 0; i < 6; ++i) {
    std::string name = "node" + std::to_string(i % 3);
    Issued out =
        must(issue(tmp.path(), name, {.out_prefix = tmp.path() + "/" + std::to_string(i)}));
    X509Ptr cert = load_cert(out.cert_path);
    ASSERT_TRUE(cert);
    EXPECT_TRUE(serials.insert(serial_of(cert.get())).second) << serial_of(cert.get());
  }
  EXPECT_EQ(must(read_index(tmp.path())).size(), 6u);
}

TEST(PkiIssue, RefusesBadNamesAndExistingFiles) {
  TempDir tmp;
  must(init_ca(tmp.path()));
  const std::string bad[] = {"",
                             "-lead",
                             ".lead",
                             "a b",
                             "a/b",
                             "a,DNS:evil",
                             "caf\xc3\xa9",
                             std::string(65, 'a'),
                             "a\n",
                             std::string("a\0b", 3)};
  for (const auto& name : bad) {
    ASSERT_FALSE(proto::valid_node_name(name));  // the same rule farad applies
    auto issued = issue(tmp.path(), name);
    ASSERT_FALSE(issued.ok()) << "issued " << name;
    EXPECT_EQ(issued.failure().reason, Error::Reason::kInvalidArgument) << issued.error();
  }
  EXPECT_TRUE(must(read_index(tmp.path())).empty());
  EXPECT_TRUE(issue(tmp.path(), std::string(64, 'a')).ok());

  must(issue(tmp.path(), "alpha"));
  std::string before = slurp(tmp.path() + "/alpha.key");
  auto twice = issue(tmp.path(), "alpha");
  ASSERT_FALSE(twice.ok());
  EXPECT_EQ(twice.failure().reason, Error::Reason::kExists);
  EXPECT_EQ(slurp(tmp.path() + "/alpha.key"), before);
  EXPECT_EQ(must(read_index(tmp.path())).size(), 2u);  // the refused one left no entry
  EXPECT_FALSE(issue(tmp.path(), "beta", {.out_prefix = "", .days = 0}).ok());
}

// --- revoke and CRL -----------------------------------------------------------

TEST(PkiCrl, RevokedSerialIsListedAndRejected) {
  TempDir tmp;
  must(init_ca(tmp.path()));
  Issued alpha = must(issue(tmp.path(), "alpha"));
  Issued beta = must(issue(tmp.path(), "beta"));
  X509Ptr ca = load_cert(ca_cert_path(tmp.path()));
  X509Ptr alpha_cert = load_cert(alpha.cert_path);
  X509Ptr beta_cert = load_cert(beta.cert_path);

  CrlResult empty = must(write_crl(tmp.path()));
  EXPECT_EQ(empty.number, 1u);
  EXPECT_EQ(empty.revoked, 0u);
  CrlPtr crl = load_crl(empty.path);
  ASSERT_TRUE(crl);
  EXPECT_EQ(crl_number(crl.get()), 1u);
  EXPECT_EQ(verify(ca.get(), alpha_cert.get(), X509_PURPOSE_SSL_CLIENT, crl.get()), X509_V_OK);

  auto revoked = must(revoke_name(tmp.path(), "alpha"));
  ASSERT_EQ(revoked.size(), 1u);
  EXPECT_EQ(revoked[0].serial, alpha.entry.serial);
  std::string out = tmp.path() + "/published.crl";
  CrlResult r = must(write_crl(tmp.path(), out, 7));
  EXPECT_EQ(r.path, out);
  EXPECT_EQ(r.number, 2u);
  EXPECT_EQ(r.revoked, 1u);
  crl = load_crl(out);
  ASSERT_TRUE(crl);
  EXPECT_EQ(X509_CRL_verify(crl.get(), X509_get0_pubkey(ca.get())), 1);
  EXPECT_EQ(X509_NAME_cmp(X509_CRL_get_issuer(crl.get()), X509_get_subject_name(ca.get())), 0);
  EXPECT_EQ(crl_number(crl.get()), 2u);
  STACK_OF(X509_REVOKED)* list = X509_CRL_get_REVOKED(crl.get());
  ASSERT_EQ(sk_X509_REVOKED_num(list), 1);
  X509_REVOKED* entry = nullptr;
  EXPECT_EQ(X509_CRL_get0_by_cert(crl.get(), &entry, alpha_cert.get()), 1);
  EXPECT_EQ(X509_CRL_get0_by_cert(crl.get(), &entry, beta_cert.get()), 0);

  EXPECT_EQ(verify(ca.get(), alpha_cert.get(), X509_PURPOSE_SSL_CLIENT, crl.get()),
            X509_V_ERR_CERT_REVOKED);
  EXPECT_EQ(verify(ca.get(), beta_cert.get(), X509_PURPOSE_SSL_CLIENT, crl.get()), X509_V_OK);

  // By serial, as `openssl x509 -serial` prints it; then both are listed.
  IndexEntry e = must(revoke_serial(tmp.path(), *parse_serial(serial_text(beta.entry.serial))));
  EXPECT_EQ(e.name, "beta");
  r = must(write_crl(tmp.path()));
  EXPECT_EQ(r.number, 3u);
  EXPECT_EQ(r.revoked, 2u);
  crl = load_crl(r.path);
  EXPECT_EQ(crl_number(crl.get()), 3u);
  EXPECT_EQ(verify(ca.get(), beta_cert.get(), X509_PURPOSE_SSL_CLIENT, crl.get()),
            X509_V_ERR_CERT_REVOKED);
}

TEST(PkiCrl, RevokeErrorsAndIndexRoundTrip) {
  TempDir tmp;
  must(init_ca(tmp.path()));
  Issued a = must(issue(tmp.path(), "alpha"));
  EXPECT_FALSE(revoke_name(tmp.path(), "nobody").ok());
  EXPECT_FALSE(revoke_serial(tmp.path(), 0x99).ok());
  must(revoke_name(tmp.path(), "alpha"));
  time_t first = *must(read_index(tmp.path()))[0].revoked_at;
  auto again = revoke_name(tmp.path(), "alpha");
  ASSERT_FALSE(again.ok());
  EXPECT_NE(again.error().find("already revoked"), std::string::npos);
  EXPECT_EQ(*must(revoke_serial(tmp.path(), a.entry.serial)).revoked_at, first);

  EXPECT_EQ(parse_serial("0A"), 10u);
  EXPECT_EQ(parse_serial("0x1f"), 31u);
  EXPECT_EQ(parse_serial("01:00"), 256u);
  EXPECT_FALSE(parse_serial("xyz"));
  EXPECT_FALSE(parse_serial(""));
  EXPECT_FALSE(parse_serial("1234567890ABCDEF0"));
  EXPECT_EQ(serial_text(0x102), "0102");

  std::ofstream(index_path(tmp.path()), std::ios::app) << "zz broken\n";
  auto broken = read_index(tmp.path());
  ASSERT_FALSE(broken.ok());
  EXPECT_EQ(broken.failure().reason, Error::Reason::kCorrupt);
  EXPECT_NE(broken.error().find("line 3"), std::string::npos) << broken.error();
}

// --- the faradayctl command ---------------------------------------------------

using Output = ProgramRun;

Output ctl(std::vector<std::string> args) {
  return faraday::testing::run_program(faraday::testing::program_path("FARADAYCTL"),
                                       std::move(args));
}

bool has(const std::string& text, const std::string& what) {
  return text.find(what) != std::string::npos;
}

TEST(Faradayctl, HelpDescribesEveryCommand) {
  Output r = ctl({"--help"});
  EXPECT_EQ(r.status, 0);
  for (const char* s : {"ca", "cert", "crl", "index.txt", "ca.key", "SIGHUP", "Exit status"}) {
    EXPECT_TRUE(has(r.out, s)) << s << "\n" << r.out;
  }
  struct Case {
    std::vector<std::string> args;
    std::vector<std::string> words;
  } cases[] = {
      {{"ca", "init", "--help"}, {"--dir", "--name", "--days", "0600", "Refuses"}},
      {{"cert", "issue", "--help"}, {"--dir", "--out", "--days", "--server", "CN=NAME", "farad"}},
      {{"cert", "revoke", "--help"}, {"--dir", "--serial", "NAME", "crl"}},
      {{"crl", "--help"}, {"--dir", "--out", "--days", "SIGHUP", "CRL number"}},
  };
  for (const auto& c : cases) {
    r = ctl(c.args);
    EXPECT_EQ(r.status, 0) << c.args[0];
    for (const auto& w : c.words) EXPECT_TRUE(has(r.out, w)) << w << "\n" << r.out;
  }
}

TEST(Faradayctl, ErrorsAreOneLineAndNonZero) {
  TempDir tmp;
  const std::vector<std::string> bad[] = {
      {},
      {"frobnicate"},
      {"ca", "init"},
      {"cert", "issue", "--dir", tmp.path(), "alpha"},  // no CA yet
      {"crl", "--dir", tmp.path()},
  };
  for (const auto& args : bad) {
    Output r = ctl(args);
    EXPECT_NE(r.status, 0);
    EXPECT_TRUE(r.err.starts_with("faradayctl: error: ")) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  }
  ASSERT_EQ(ctl({"ca", "init", "--dir", tmp.path()}).status, 0);
  const std::vector<std::string> bad2[] = {
      {"ca", "init", "--dir", tmp.path()},
      {"cert", "issue", "--dir", tmp.path(), "bad/name"},
      {"cert", "revoke", "--dir", tmp.path()},
      {"cert", "revoke", "--dir", tmp.path(), "ghost"},
      {"cert", "revoke", "--dir", tmp.path(), "--serial", "nothex"},
      {"crl", "--dir", tmp.path(), "--days", "0"},
  };
  for (const auto& args : bad2) {
    Output r = ctl(args);
    EXPECT_NE(r.status, 0) << args.back();
    EXPECT_TRUE(r.err.starts_with("faradayctl: error: ")) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  }
}

// --- end to end: faradayctl's certificates and a real farad ------------------

proto::NodeInfo node_info(int index) {
  proto::NodeInfo info;
  std::string key(32, '\0');
  for (int i = 0; i < 32; ++i) key[i] = static_cast<char>(index * 37 + i + 1);
  info.set_public_key(key);
  *info.add_underlay() = *proto::parse_endpoint(fmt::format("192.0.2.{}:51820", index));
  *info.add_allowed_ips() = *proto::parse_prefix(fmt::format("10.100.0.{}/32", index));
  return info;
}

class FaradProcess {
 public:
  FaradProcess(const std::string& dir, std::vector<std::string> args) : dir_(dir) {
    pid_ = faraday::testing::spawn_program(faraday::testing::program_path("FARAD"), std::move(args),
                                           dir + "/farad.out", dir + "/farad.err");
  }
  ~FaradProcess() {
    if (pid_ <= 0) return;
    kill(pid_, SIGTERM);
    int st = 0;
    waitpid(pid_, &st, 0);
  }
  std::string log() const { return slurp(dir_ + "/farad.err"); }
  void signal(int sig) const { kill(pid_, sig); }

 private:
  std::string dir_;
  pid_t pid_ = -1;
};

struct Node {
  std::unique_ptr<FaradClient> client;
  std::vector<std::string> disconnects;
  std::vector<proto::Error> errors;
};

class EndToEnd : public ::testing::Test {
 protected:
  void SetUp() override { ::signal(SIGPIPE, SIG_IGN); }

  bool run_until(const std::function<bool()>& pred, Clock::duration timeout = 10s) {
    return faraday::testing::run_io_until(io, pred, timeout);
  }

  // A FaradClient for `name` using DIR/name.{pem,key} as faradayctl wrote them.
  Node& node(const std::string& name, int index) {
    auto made = proto::make_client_context(
        {ca_cert_path(dir()), dir() + "/" + name + ".pem", dir() + "/" + name + ".key", ""});
    EXPECT_TRUE(made.ok()) << made.error();
    proto::SslCtxPtr ctx = made ? *made : nullptr;
    auto n = std::make_unique<Node>();
    Node* raw = n.get();
    FaradClientOptions o;
    o.host = "127.0.0.1";
    o.port = port;
    o.node = node_info(index);
    o.backoff_min = 50ms;
    o.backoff_max = 200ms;
    o.connect_timeout = 2s;
    FaradClient::Callbacks cb;
    cb.on_disconnected = [raw](const std::string& r) { raw->disconnects.push_back(r); };
    cb.on_error = [raw](const proto::Error& e) { raw->errors.push_back(e); };
    n->client = std::make_unique<FaradClient>(io, ctx, o, cb);
    n->client->start();
    nodes.push_back(std::move(n));
    return *raw;
  }

  const std::string& dir() const { return tmp.path(); }

  TempDir tmp;
  boost::asio::io_context io;
  uint16_t port = 0;
  std::vector<std::unique_ptr<Node>> nodes;
};

TEST_F(EndToEnd, FaradAcceptsFaradayctlCertificatesAndRefusesARevokedOne) {
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"ca", "init", "--dir", dir(), "--name", "e2e CA"},
           {"cert", "issue", "--dir", dir(), "farad"},
           {"cert", "issue", "--dir", dir(), "alpha"},
           {"cert", "issue", "--dir", dir(), "beta"},
           {"crl", "--dir", dir()},
       }) {
    Output r = ctl(args);
    ASSERT_EQ(r.status, 0) << args[0] << ": " << r.err;
  }
  FaradProcess farad(dir(), {"--listen", "127.0.0.1:0", "--ca", ca_cert_path(dir()), "--cert",
                             dir() + "/farad.pem", "--key", dir() + "/farad.key", "--crl",
                             dir() + "/crl.pem", "--expiry", "2"});
  const std::string marker = "listening on 127.0.0.1:";
  std::string log;
  ASSERT_TRUE(run_until([&] {
    log = farad.log();
    return has(log, marker);
  })) << log;
  port = static_cast<uint16_t>(std::stoi(log.substr(log.find(marker) + marker.size())));

  Node& alpha = node("alpha", 1);
  Node& beta = node("beta", 2);
  ASSERT_TRUE(run_until([&] { return alpha.client->joined() && beta.client->joined(); }))
      << alpha.client->last_error() << " / " << beta.client->last_error() << "\n"
      << farad.log();
  EXPECT_EQ(alpha.client->name(), "alpha");
  EXPECT_EQ(beta.client->name(), "beta");

  // farad's certificate cannot join as a node (server-only EKU).
  Node& impostor = node("farad", 3);

  Output r = ctl({"cert", "revoke", "--dir", dir(), "beta"});
  ASSERT_EQ(r.status, 0) << r.err;
  r = ctl({"crl", "--dir", dir()});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(has(r.out, "CRL number 2, 1 revoked")) << r.out;
  farad.signal(SIGHUP);
  ASSERT_TRUE(run_until([&] { return has(farad.log(), "TLS configuration reloaded"); }));

  // beta's connection is closed and it cannot come back; alpha stays.
  ASSERT_TRUE(run_until([&] { return !beta.client->joined(); })) << farad.log();
  // A new connection with the revoked certificate fails the handshake.
  Node& beta2 = node("beta", 2);
  auto until = Clock::now() + 2s;
  run_until([&] { return beta2.client->joined() || Clock::now() > until; });
  EXPECT_FALSE(beta2.client->joined());
  EXPECT_FALSE(beta.client->joined());
  EXPECT_FALSE(impostor.client->joined());
  EXPECT_TRUE(alpha.client->joined());
  EXPECT_GT(beta2.client->stats().connects, 0u);
  EXPECT_EQ(beta2.client->stats().joins, 0u);
  log = farad.log();
  EXPECT_TRUE(has(log,
                  "node=beta: certificate no longer valid after TLS reload: "
                  "certificate revoked"))
      << log;

  // A certificate issued after the revocation is accepted.
  ASSERT_EQ(ctl({"cert", "issue", "--dir", dir(), "gamma"}).status, 0);
  Node& gamma = node("gamma", 4);
  EXPECT_TRUE(run_until([&] { return gamma.client->joined(); })) << gamma.client->last_error();
  for (auto& n : nodes) n->client->stop();
}

}  // namespace
}  // namespace faraday::faradayctl::pki
