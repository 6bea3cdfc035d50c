// pki.h: the operator's certificate authority for a Faraday cluster, kept in
// one directory and driven by faradayctl (OpenSSL 3 API, no openssl CLI).
//
// The directory holds:
//   ca.key      the CA's EC P-256 private key (0600, never overwritten)
//   ca.pem      the self-signed CA certificate (CA:TRUE critical,
//               keyUsage keyCertSign+cRLSign) that farad and nodes trust
//   index.txt   one line per issued certificate:
//               <serial hex> <name> <not-after> <revoked-at or ->
//   serial      the next serial number (hex)
//   crlnumber   the next CRL number (decimal)
//   .lock       flock(2)ed by every operation, so two runs never interleave
//
// Issued certificates: subject CN=NAME and SAN DNS:NAME (NAME follows
// proto::valid_node_name, the rule farad applies to the CN), EC P-256 keys,
// basicConstraints CA:FALSE, keyUsage digitalSignature, extendedKeyUsage
// clientAuth+serverAuth for nodes (they are TLS servers to each other too) and
// serverAuth only for farad's own certificate, so farad's key cannot join as a
// node. Keys are written 0600, atomically, and never overwrite a file.
//
// Every operation returns a pki::Result (result.h's Result with a typed
// reason): a one-line message naming the file or the reason, and what kind of
// failure it is. Nothing throws. Not thread-safe within a process; safe across
// processes (.lock).
#pragma once

#include <cstdint>
#include <ctime>
#include <optional>
#include <string>
#include <vector>

#include "result.h"

namespace faraday::faradayctl::pki {

inline constexpr int kDefaultCaDays = 3650;
inline constexpr int kDefaultCertDays = 365;
inline constexpr int kDefaultCrlDays = 30;
inline constexpr const char* kDefaultCaName = "Faraday CA";
// The name farad's certificate carries (FaradClientOptions::server_name).
inline constexpr const char* kFaradName = "farad";

// Why an operation failed: faradayctl exits 2 on kInvalidArgument, 1 otherwise.
struct Error {
  enum class Reason {
    kInvalidArgument,  // a bad name, serial, or number of days
    kExists,           // refusing to overwrite a file
    kNotFound,         // no CA in the directory, no such certificate
    kIo,               // reading or writing a file failed
    kCrypto,           // OpenSSL failed
    kCorrupt,          // index, serial or CRL number file malformed
  };
  Reason reason = Reason::kIo;
  std::string message;
};
template <typename T>
using Result = faraday::Result<T, Error>;
using Status = faraday::Result<void, Error>;

// The usual file names inside a CA directory.
std::string ca_cert_path(const std::string& dir);
std::string ca_key_path(const std::string& dir);
std::string index_path(const std::string& dir);

struct IndexEntry {
  uint64_t serial = 0;
  std::string name;
  time_t not_after = 0;
  std::optional<time_t> revoked_at;
};

// Creates DIR (if missing) with a new CA. Refuses if DIR already has a CA key
// or certificate.
Status init_ca(const std::string& dir, const std::string& name = kDefaultCaName,
               int days = kDefaultCaDays);

struct IssueOptions {
  std::string out_prefix;  // writes PREFIX.pem and PREFIX.key; default DIR/NAME
  int days = kDefaultCertDays;
  bool server = false;  // farad's certificate: serverAuth only (implied by NAME == "farad")
};
struct Issued {
  IndexEntry entry;
  std::string cert_path;
  std::string key_path;
};
// Issues a certificate for NAME with the next serial, records it in the index,
// then writes its key and certificate. Refuses if either output file exists.
Result<Issued> issue(const std::string& dir, const std::string& name,
                     const IssueOptions& options = {});

// Marks every not yet revoked certificate of NAME revoked; returns them.
// kNotFound if there is none.
Result<std::vector<IndexEntry>> revoke_name(const std::string& dir, const std::string& name);
// Marks the certificate with this serial revoked. kNotFound if the index does
// not have it; revoking twice keeps the first date.
Result<IndexEntry> revoke_serial(const std::string& dir, uint64_t serial);

struct CrlResult {
  std::string path;
  uint64_t number = 0;     // the CRL number it carries
  size_t revoked = 0;      // serials listed
  time_t next_update = 0;  // regenerate before this
};
// Writes a PEM CRL (default DIR/crl.pem), signed by the CA, listing every
// revoked serial, with the next CRL number. Replaces `out` atomically.
Result<CrlResult> write_crl(const std::string& dir, const std::string& out = "",
                            int days = kDefaultCrlDays);

Result<std::vector<IndexEntry>> read_index(const std::string& dir);

// "1f" -> 31; accepts an optional 0x and colons (as `openssl x509 -serial`
// and browsers print). nullopt if not hex or too long.
std::optional<uint64_t> parse_serial(const std::string& text);
std::string serial_text(uint64_t serial);  // upper-case hex, even length
std::string time_text(time_t t);           // 2025-01-31T12:00:00Z

}  // namespace faraday::faradayctl::pki
