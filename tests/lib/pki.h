// pki.h: a throwaway PKI for farad's tests and load benchmark, made with the
// OpenSSL API: EC P-256 keys, a CA, certificates with a chosen CN, validity and
// serial, CRLs, and PEM files in a temporary directory.
#pragma once

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <memory>

#include <string>
#include <vector>
#include "proto/openssl_ptr.h"
#include "tests/lib/temp_dir.h"  // TempDir, which the tests using these certificates want

namespace faraday::testing {

using proto::PkeyPtr;
using proto::X509Ptr;

struct Identity {
  X509Ptr cert;
  PkeyPtr key;
  std::string cert_path;  // empty until written
  std::string key_path;
};

PkeyPtr make_key();  // EC P-256

// A second holder of the same certificate and key (a copied file).
Identity copy_of(const Identity& id);

struct CertSpec {
  std::string cn;
  long not_before = -3600;  // seconds from now
  long not_after = 86400 * 30;
  bool is_ca = false;
  std::string dns_san;  // optional subjectAltName DNS entry
  bool no_cn = false;   // leave the subject without a CN

  CertSpec() = default;
  explicit CertSpec(std::string name) : cn(std::move(name)) {}
};

class Pki {
 public:
  // A fresh CA named `ca_name`; files go under `dir` (created if missing).
  Pki(std::string dir, const std::string& ca_name = "faraday test CA");

  // A certificate issued by this CA (not written to disk).
  Identity issue(const CertSpec& spec) const;
  Identity issue(const std::string& cn) const { return issue(CertSpec(cn)); }
  // Writes cert and key as PEM files named NAME.pem and NAME.key.
  void write(Identity& id, const std::string& name) const;
  // Writes a CRL of this CA revoking `revoked` to `path`.
  void write_crl(const std::string& path, const std::vector<const X509*>& revoked) const;

  const std::string& dir() const { return dir_; }
  const std::string& ca_path() const { return ca_.cert_path; }
  X509* ca_cert() const { return ca_.cert.get(); }

 private:
  std::string dir_;
  Identity ca_;
  mutable long next_serial_ = 2;
};

}  // namespace faraday::testing
