// pki.cpp: see pki.h.
#include "faradayctl/pki.h"

#include <fcntl.h>
#include <fmt/core.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <functional>
#include <memory>
#include <sstream>
#include <string_view>
#include <type_traits>

#include "proto/node_info.h"
#include "proto/openssl_ptr.h"

namespace faraday::faradayctl::pki {

namespace {

using Reason = Error::Reason;

using proto::BioPtr;
using proto::CrlPtr;
using proto::ExtPtr;
using proto::PkeyPtr;
using proto::X509Ptr;
using IntPtr = proto::Asn1IntegerPtr;
using TimePtr = proto::Asn1TimePtr;

constexpr int kMaxDays = 36500;
constexpr time_t kBackdate = 300;  // notBefore this far back, for clock skew

// Inside this file a failure deep in a helper (one OpenSSL call in a chain of
// twenty) unwinds to the public function that called it, which returns it as
// a Result (returning_failures below). Failure is file-local and never leaves
// a public function: callers see only Results.
struct Failure {
  Error error;
};

[[noreturn]] void fail(Reason reason, const std::string& message) {
  throw Failure{{reason, message}};
}

// body()'s value, or the Error a helper failed with.
template <typename F>
auto returning_failures(F&& body) -> Result<decltype(body())> {
  try {
    if constexpr (std::is_void_v<decltype(body())>) {
      body();
      return {};
    } else {
      return body();
    }
  } catch (const Failure& f) {
    return f.error;
  }
}

// Throws kCrypto with OpenSSL's first queued error, if any.
void crypto_check(bool ok, const char* what) {
  if (ok) return;
  unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) fail(Reason::kCrypto, fmt::format("OpenSSL: {} failed", what));
  char buf[256];
  ERR_error_string_n(e, buf, sizeof(buf));
  fail(Reason::kCrypto, fmt::format("OpenSSL: {} failed: {}", what, buf));
}

std::string sys_error(const std::string& what) {
  return fmt::format("{}: {}", what, strerror(errno));
}

void check_days(int days) {
  if (days < 1 || days > kMaxDays) {
    fail(Reason::kInvalidArgument, fmt::format("--days {} is outside 1..{}", days, kMaxDays));
  }
}

bool exists(const std::string& path) {
  struct stat st;
  return lstat(path.c_str(), &st) == 0;
}

std::string read_file(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    fail(errno == ENOENT ? Reason::kNotFound : Reason::kIo, sys_error(path));
  }
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int saved = errno;
      close(fd);
      errno = saved;
      fail(Reason::kIo, sys_error(path));
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  return out;
}

// Writes `data` to a temporary file beside `path` (mode `mode`, fsynced), then
// moves it into place: with link(2) when `exclusive` (so an existing file is
// never replaced, even by a race), else with rename(2).
void write_file(const std::string& path, const std::string& data, mode_t mode, bool exclusive) {
  std::string tmp = path + ".tmp.XXXXXX";
  int fd = mkstemp(tmp.data());
  if (fd < 0) fail(Reason::kIo, sys_error(path));
  auto cleanup = [&](const std::string& msg) {
    int saved = errno;
    close(fd);
    unlink(tmp.c_str());
    errno = saved;
    fail(Reason::kIo, sys_error(msg));
  };
  if (fchmod(fd, mode) != 0) cleanup(path);
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = write(fd, data.data() + off, data.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) cleanup(path);
    off += static_cast<size_t>(n);
  }
  if (fsync(fd) != 0) cleanup(path);
  close(fd);
  if (exclusive) {
    int rc = link(tmp.c_str(), path.c_str());
    int saved = errno;
    unlink(tmp.c_str());
    if (rc != 0) {
      if (saved == EEXIST)
        fail(Reason::kExists, fmt::format("{} exists; not overwriting it", path));
      errno = saved;
      fail(Reason::kIo, sys_error(path));
    }
  } else if (rename(tmp.c_str(), path.c_str()) != 0) {
    int saved = errno;
    unlink(tmp.c_str());
    errno = saved;
    fail(Reason::kIo, sys_error(path));
  }
  // Make the new directory entry durable too.
  size_t slash = path.rfind('/');
  std::string parent = slash == std::string::npos ? "." : path.substr(0, slash + 1);
  int dfd = open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    fsync(dfd);
    close(dfd);
  }
}

// Holds flock(DIR/.lock) for one operation.
class DirLock {
 public:
  explicit DirLock(const std::string& dir) {
    std::string path = dir + "/.lock";
    fd_ = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd_ < 0) fail(errno == ENOENT ? Reason::kNotFound : Reason::kIo, sys_error(path));
    while (flock(fd_, LOCK_EX) != 0) {
      if (errno != EINTR) {
        close(fd_);
        fail(Reason::kIo, sys_error(path));
      }
    }
  }
  ~DirLock() { close(fd_); }
  DirLock(const DirLock&) = delete;
  DirLock& operator=(const DirLock&) = delete;

 private:
  int fd_ = -1;
};

std::string pem_of(const std::function<int(BIO*)>& write) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  crypto_check(bio != nullptr, "BIO_new");
  crypto_check(write(bio.get()) == 1, "PEM write");
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(len));
}

BioPtr bio_of(const std::string& data) {
  BioPtr bio(BIO_new_mem_buf(data.data(), static_cast<int>(data.size())));
  crypto_check(bio != nullptr, "BIO_new_mem_buf");
  return bio;
}

PkeyPtr make_key() {
  PkeyPtr key(EVP_EC_gen("P-256"));
  crypto_check(key != nullptr, "EC P-256 key generation");
  return key;
}

struct Ca {
  X509Ptr cert;
  PkeyPtr key;
};

Ca load_ca(const std::string& dir) {
  std::string cert_path = ca_cert_path(dir), key_path = ca_key_path(dir);
  if (!exists(cert_path) || !exists(key_path)) {
    fail(Reason::kNotFound,
         fmt::format("no CA in {} (run `faradayctl ca init --dir {}` first)", dir, dir));
  }
  Ca ca;
  std::string pem = read_file(cert_path);
  ca.cert.reset(PEM_read_bio_X509(bio_of(pem).get(), nullptr, nullptr, nullptr));
  if (!ca.cert) {
    ERR_clear_error();
    fail(Reason::kCorrupt, fmt::format("{}: not a PEM certificate", cert_path));
  }
  pem = read_file(key_path);
  ca.key.reset(PEM_read_bio_PrivateKey(bio_of(pem).get(), nullptr, nullptr, nullptr));
  OPENSSL_cleanse(pem.data(), pem.size());
  if (!ca.key) {
    ERR_clear_error();
    fail(Reason::kCorrupt, fmt::format("{}: not a PEM private key", key_path));
  }
  if (X509_check_private_key(ca.cert.get(), ca.key.get()) != 1) {
    ERR_clear_error();
    fail(Reason::kCorrupt, fmt::format("{} does not match {}", key_path, cert_path));
  }
  return ca;
}

// An extension from OpenSSL's configuration syntax (fixed strings only).
void add_ext(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  ExtPtr ext(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value));
  crypto_check(ext != nullptr, "extension");
  crypto_check(X509_add_ext(cert, ext.get(), -1) == 1, "X509_add_ext");
}

void add_dns_san(X509* cert, const std::string& name) {
  GENERAL_NAMES* names = sk_GENERAL_NAME_new_null();
  GENERAL_NAME* gen = GENERAL_NAME_new();
  ASN1_IA5STRING* ia5 = ASN1_IA5STRING_new();
  bool ok =
      names && gen && ia5 && ASN1_STRING_set(ia5, name.data(), static_cast<int>(name.size())) == 1;
  if (ok) {
    GENERAL_NAME_set0_value(gen, GEN_DNS, ia5);
    ia5 = nullptr;
    ok = sk_GENERAL_NAME_push(names, gen) > 0;
    if (ok) gen = nullptr;
  }
  ok = ok && X509_add1_ext_i2d(cert, NID_subject_alt_name, names, 0, X509V3_ADD_DEFAULT) == 1;
  ASN1_IA5STRING_free(ia5);
  GENERAL_NAME_free(gen);
  GENERAL_NAMES_free(names);
  crypto_check(ok, "subjectAltName");
}

// A certificate for `key` with subject CN=cn, valid from now-kBackdate to
// not_after, signed by `issuer` (or self-signed when null).
X509Ptr new_cert(EVP_PKEY* key, const std::string& cn, uint64_t serial, time_t now,
                 time_t not_after, X509* issuer) {
  X509Ptr cert(X509_new());
  crypto_check(cert != nullptr, "X509_new");
  crypto_check(X509_set_version(cert.get(), X509_VERSION_3) == 1, "X509_set_version");
  crypto_check(ASN1_INTEGER_set_uint64(X509_get_serialNumber(cert.get()), serial) == 1, "serial");
  crypto_check(ASN1_TIME_set(X509_getm_notBefore(cert.get()), now - kBackdate) != nullptr,
               "notBefore");
  crypto_check(ASN1_TIME_set(X509_getm_notAfter(cert.get()), not_after) != nullptr, "notAfter");
  crypto_check(X509_set_pubkey(cert.get(), key) == 1, "X509_set_pubkey");
  X509_NAME* subject = X509_get_subject_name(cert.get());
  crypto_check(X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_UTF8,
                                          reinterpret_cast<const unsigned char*>(cn.c_str()), -1,
                                          -1, 0) == 1,
               "subject CN");
  X509* iss = issuer ? issuer : cert.get();
  crypto_check(X509_set_issuer_name(cert.get(), X509_get_subject_name(iss)) == 1, "issuer");
  return cert;
}

void sign(X509* cert, EVP_PKEY* key) {
  crypto_check(X509_sign(cert, key, EVP_sha256()) > 0, "X509_sign");
}

std::string cert_pem(X509* cert) {
  return pem_of([cert](BIO* b) { return PEM_write_bio_X509(b, cert); });
}

std::string key_pem(EVP_PKEY* key) {
  return pem_of([key](BIO* b) {
    return PEM_write_bio_PrivateKey(b, key, nullptr, nullptr, 0, nullptr, nullptr);
  });
}

std::optional<time_t> parse_time(const std::string& text) {
  tm t{};
  const char* end = strptime(text.c_str(), "%Y-%m-%dT%H:%M:%SZ", &t);
  if (!end || *end != '\0') return std::nullopt;
  return timegm(&t);
}

std::vector<IndexEntry> parse_index(const std::string& path, const std::string& text) {
  std::vector<IndexEntry> out;
  std::istringstream lines(text);
  int lineno = 0;
  for (std::string line; std::getline(lines, line);) {
    ++lineno;
    if (line.empty() || line[0] == '#') continue;
    std::istringstream fields(line);
    std::string serial, name, not_after, revoked, extra;
    fields >> serial >> name >> not_after >> revoked;
    IndexEntry e;
    auto s = parse_serial(serial);
    auto na = parse_time(not_after);
    auto ra = revoked == "-" ? std::optional<time_t>(0) : parse_time(revoked);
    if (!s || !proto::valid_node_name(name) || !na || !ra || (fields >> extra)) {
      fail(Reason::kCorrupt, fmt::format("{} line {}: malformed entry", path, lineno));
    }
    e.serial = *s;
    e.name = name;
    e.not_after = *na;
    if (revoked != "-") e.revoked_at = *ra;
    out.push_back(std::move(e));
  }
  return out;
}

std::vector<IndexEntry> index_of(const std::string& dir) {
  std::string path = index_path(dir);
  return parse_index(path, read_file(path));
}

void write_index(const std::string& dir, const std::vector<IndexEntry>& entries) {
  std::string text = "# serial name not-after revoked-at (written by faradayctl)\n";
  for (const auto& e : entries) {
    text += fmt::format("{} {} {} {}\n", serial_text(e.serial), e.name, time_text(e.not_after),
                        e.revoked_at ? time_text(*e.revoked_at) : "-");
  }
  write_file(index_path(dir), text, 0644, false);
}

// Reads a counter file (`hex` or decimal) and writes back value+1 before the
// value is used, so a number is never handed out twice even after a failure.
uint64_t take_counter(const std::string& path, bool hex) {
  std::string text = read_file(path);
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  std::optional<uint64_t> value;
  if (hex) {
    value = parse_serial(text);
  } else if (!text.empty() && text.size() <= 19 &&
             text.find_first_not_of("0123456789") == std::string::npos) {
    value = std::stoull(text);
  }
  if (!value || *value == 0 || *value == UINT64_MAX) {
    fail(Reason::kCorrupt, fmt::format("{}: malformed counter", path));
  }
  write_file(path, (hex ? serial_text(*value + 1) : std::to_string(*value + 1)) + "\n", 0644,
             false);
  return *value;
}

IndexEntry revoke_where(const std::string& dir, const std::function<bool(const IndexEntry&)>& match,
                        std::vector<IndexEntry>* revoked) {
  std::vector<IndexEntry> entries = index_of(dir);
  time_t now = time(nullptr);
  IndexEntry last;
  bool found = false;
  for (auto& e : entries) {
    if (!match(e)) continue;
    found = true;
    if (!e.revoked_at) {
      e.revoked_at = now;
      if (revoked) revoked->push_back(e);
    }
    last = e;
  }
  if (!found) return {};
  write_index(dir, entries);
  return last;
}

}  // namespace

std::string ca_cert_path(const std::string& dir) {
  return dir + "/ca.pem";
}
std::string ca_key_path(const std::string& dir) {
  return dir + "/ca.key";
}
std::string index_path(const std::string& dir) {
  return dir + "/index.txt";
}

std::optional<uint64_t> parse_serial(const std::string& text) {
  std::string hex;
  std::string_view t = text;
  if (t.starts_with("0x") || t.starts_with("0X")) t.remove_prefix(2);
  for (char c : t) {
    if (c == ':') continue;
    if (!isxdigit(static_cast<unsigned char>(c))) return std::nullopt;
    hex += c;
  }
  size_t first = hex.find_first_not_of('0');
  if (hex.empty()) return std::nullopt;
  if (first == std::string::npos) return 0;
  if (hex.size() - first > 16) return std::nullopt;
  return std::stoull(hex.substr(first), nullptr, 16);
}

std::string serial_text(uint64_t serial) {
  size_t digits = fmt::formatted_size("{:X}", serial);
  return fmt::format("{:0{}X}", serial, (digits + 1) / 2 * 2);
}

std::string time_text(time_t t) {
  tm utc;
  gmtime_r(&t, &utc);
  char buf[32];
  strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &utc);
  return buf;
}

namespace {

// The operations, failing by fail(); the public functions at the end return
// what they give or fail with.

void do_init_ca(const std::string& dir, const std::string& name, int days) {
  check_days(days);
  if (name.empty() || name.size() > 64) {
    fail(Reason::kInvalidArgument, "the CA name must be 1..64 characters");
  }
  if (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) fail(Reason::kIo, sys_error(dir));
  DirLock lock(dir);
  for (const std::string& path :
       {ca_key_path(dir), ca_cert_path(dir), index_path(dir), dir + "/serial"}) {
    if (exists(path)) {
      fail(Reason::kExists,
           fmt::format("{} exists: {} already holds a CA; not overwriting it", path, dir));
    }
  }
  PkeyPtr key = make_key();
  time_t now = time(nullptr);
  X509Ptr cert = new_cert(key.get(), name, 1, now, now + days * time_t{86400}, nullptr);
  add_ext(cert.get(), cert.get(), NID_basic_constraints, "critical,CA:TRUE");
  add_ext(cert.get(), cert.get(), NID_key_usage, "critical,keyCertSign,cRLSign");
  add_ext(cert.get(), cert.get(), NID_subject_key_identifier, "hash");
  sign(cert.get(), key.get());

  std::string pem = key_pem(key.get());
  write_file(ca_key_path(dir), pem, 0600, true);
  OPENSSL_cleanse(pem.data(), pem.size());
  write_file(ca_cert_path(dir), cert_pem(cert.get()), 0644, true);
  write_index(dir, {});
  write_file(dir + "/serial", serial_text(2) + "\n", 0644, false);
  write_file(dir + "/crlnumber", "1\n", 0644, false);
}

Issued do_issue(const std::string& dir, const std::string& name, const IssueOptions& options) {
  if (!proto::valid_node_name(name)) {
    fail(Reason::kInvalidArgument,
         fmt::format("{:?} is not a valid node name: 1..{} characters from [A-Za-z0-9._-], "
                     "the first a letter or digit",
                     name.substr(0, 80), proto::kMaxNameBytes));
  }
  check_days(options.days);
  const bool server = options.server || name == kFaradName;
  Issued out;
  std::string prefix = options.out_prefix.empty() ? dir + "/" + name : options.out_prefix;
  out.cert_path = prefix + ".pem";
  out.key_path = prefix + ".key";

  DirLock lock(dir);
  Ca ca = load_ca(dir);
  for (const std::string& path : {out.cert_path, out.key_path}) {
    if (exists(path)) fail(Reason::kExists, fmt::format("{} exists; not overwriting it", path));
  }
  std::vector<IndexEntry> entries = index_of(dir);

  time_t now = time(nullptr);
  out.entry.name = name;
  out.entry.not_after = now + options.days * time_t{86400};
  // A certificate must not outlive its CA: nodes would reject the chain anyway.
  int ca_left_days = 0, ca_left_secs = 0;
  if (ASN1_TIME_diff(&ca_left_days, &ca_left_secs, nullptr, X509_get0_notAfter(ca.cert.get())) ==
          1 &&
      now + ca_left_days * time_t{86400} + ca_left_secs < out.entry.not_after) {
    out.entry.not_after = now + ca_left_days * time_t{86400} + ca_left_secs;
  }
  PkeyPtr key = make_key();
  out.entry.serial = take_counter(dir + "/serial", true);
  for (const auto& e : entries) {
    if (e.serial == out.entry.serial) {
      fail(Reason::kCorrupt,
           fmt::format("{}/serial hands out {}, already in the index", dir, serial_text(e.serial)));
    }
  }
  X509Ptr cert =
      new_cert(key.get(), name, out.entry.serial, now, out.entry.not_after, ca.cert.get());
  X509* c = cert.get();
  add_ext(c, ca.cert.get(), NID_basic_constraints, "critical,CA:FALSE");
  add_ext(c, ca.cert.get(), NID_key_usage, "critical,digitalSignature");
  add_ext(c, ca.cert.get(), NID_ext_key_usage, server ? "serverAuth" : "clientAuth,serverAuth");
  add_ext(c, ca.cert.get(), NID_subject_key_identifier, "hash");
  add_ext(c, ca.cert.get(), NID_authority_key_identifier, "keyid:always");
  add_dns_san(c, name);
  sign(c, ca.key.get());

  // Recorded before the files exist: an entry without files is harmless, a
  // certificate missing from the index could not be revoked by name.
  entries.push_back(out.entry);
  write_index(dir, entries);
  std::string pem = key_pem(key.get());
  write_file(out.key_path, pem, 0600, true);
  OPENSSL_cleanse(pem.data(), pem.size());
  try {
    write_file(out.cert_path, cert_pem(c), 0644, true);
  } catch (const Failure&) {
    unlink(out.key_path.c_str());
    throw;
  }
  return out;
}

std::vector<IndexEntry> do_revoke_name(const std::string& dir, const std::string& name) {
  DirLock lock(dir);
  load_ca(dir);  // a clear error when DIR is not a CA
  std::vector<IndexEntry> revoked;
  bool any = false;
  revoke_where(
      dir,
      [&](const IndexEntry& e) {
        if (e.name != name) return false;
        any = true;
        return true;
      },
      &revoked);
  if (!any) fail(Reason::kNotFound, fmt::format("no certificate for {:?} in the index", name));
  if (revoked.empty()) {
    fail(Reason::kNotFound, fmt::format("every certificate of {:?} is already revoked", name));
  }
  return revoked;
}

IndexEntry do_revoke_serial(const std::string& dir, uint64_t serial) {
  DirLock lock(dir);
  load_ca(dir);
  IndexEntry e = revoke_where(
      dir, [serial](const IndexEntry& x) { return x.serial == serial; }, nullptr);
  if (!e.revoked_at) {
    fail(Reason::kNotFound,
         fmt::format("no certificate with serial {} in the index", serial_text(serial)));
  }
  return e;
}

CrlResult do_write_crl(const std::string& dir, const std::string& out, int days) {
  check_days(days);
  DirLock lock(dir);
  Ca ca = load_ca(dir);
  std::vector<IndexEntry> entries = index_of(dir);
  CrlResult result;
  result.path = out.empty() ? dir + "/crl.pem" : out;
  result.number = take_counter(dir + "/crlnumber", false);

  CrlPtr crl(X509_CRL_new());
  crypto_check(crl != nullptr, "X509_CRL_new");
  crypto_check(X509_CRL_set_version(crl.get(), X509_CRL_VERSION_2) == 1, "CRL version");
  crypto_check(X509_CRL_set_issuer_name(crl.get(), X509_get_subject_name(ca.cert.get())) == 1,
               "CRL issuer");
  time_t now = time(nullptr);
  result.next_update = now + days * time_t{86400};
  TimePtr t(ASN1_TIME_set(nullptr, now));
  crypto_check(t && X509_CRL_set1_lastUpdate(crl.get(), t.get()) == 1, "lastUpdate");
  crypto_check(ASN1_TIME_set(t.get(), result.next_update) != nullptr &&
                   X509_CRL_set1_nextUpdate(crl.get(), t.get()) == 1,
               "nextUpdate");
  for (const auto& e : entries) {
    if (!e.revoked_at) continue;
    X509_REVOKED* r = X509_REVOKED_new();
    IntPtr serial(ASN1_INTEGER_new());
    TimePtr when(ASN1_TIME_set(nullptr, *e.revoked_at));
    bool ok = r && serial && when && ASN1_INTEGER_set_uint64(serial.get(), e.serial) == 1 &&
              X509_REVOKED_set_serialNumber(r, serial.get()) == 1 &&
              X509_REVOKED_set_revocationDate(r, when.get()) == 1 &&
              X509_CRL_add0_revoked(crl.get(), r) == 1;
    if (!ok) X509_REVOKED_free(r);
    crypto_check(ok, "revoked entry");
    ++result.revoked;
  }
  IntPtr number(ASN1_INTEGER_new());
  crypto_check(number && ASN1_INTEGER_set_uint64(number.get(), result.number) == 1 &&
                   X509_CRL_add1_ext_i2d(crl.get(), NID_crl_number, number.get(), 0, 0) == 1,
               "CRL number");
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, ca.cert.get(), nullptr, nullptr, crl.get(), 0);
  ExtPtr akid(X509V3_EXT_conf_nid(nullptr, &ctx, NID_authority_key_identifier, "keyid:always"));
  crypto_check(akid && X509_CRL_add_ext(crl.get(), akid.get(), -1) == 1, "CRL authorityKeyId");
  crypto_check(X509_CRL_sort(crl.get()) == 1, "X509_CRL_sort");
  crypto_check(X509_CRL_sign(crl.get(), ca.key.get(), EVP_sha256()) > 0, "X509_CRL_sign");
  X509_CRL* raw = crl.get();
  write_file(result.path, pem_of([raw](BIO* b) { return PEM_write_bio_X509_CRL(b, raw); }), 0644,
             false);
  return result;
}

}  // namespace

Status init_ca(const std::string& dir, const std::string& name, int days) {
  return returning_failures([&] { do_init_ca(dir, name, days); });
}

Result<Issued> issue(const std::string& dir, const std::string& name, const IssueOptions& options) {
  return returning_failures([&] { return do_issue(dir, name, options); });
}

Result<std::vector<IndexEntry>> revoke_name(const std::string& dir, const std::string& name) {
  return returning_failures([&] { return do_revoke_name(dir, name); });
}

Result<IndexEntry> revoke_serial(const std::string& dir, uint64_t serial) {
  return returning_failures([&] { return do_revoke_serial(dir, serial); });
}

Result<CrlResult> write_crl(const std::string& dir, const std::string& out, int days) {
  return returning_failures([&] { return do_write_crl(dir, out, days); });
}

Result<std::vector<IndexEntry>> read_index(const std::string& dir) {
  return returning_failures([&] { return index_of(dir); });
}

}  // namespace faraday::faradayctl::pki
