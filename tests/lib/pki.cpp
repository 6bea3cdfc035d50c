// pki.cpp: see pki.h.
#include "tests/lib/pki.h"

#include <openssl/ec.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>

namespace faraday::testing {

namespace {

void check(bool ok, const char* what) {
  if (!ok) throw std::runtime_error(std::string("pki: ") + what);
}

void add_ext(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
  check(ext != nullptr, "extension");
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
}

X509Ptr make_cert(const CertSpec& spec, EVP_PKEY* key, X509* issuer, EVP_PKEY* issuer_key,
                  long serial) {
  X509Ptr cert(X509_new());
  check(cert != nullptr, "X509_new");
  X509_set_version(cert.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), serial);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), spec.not_before);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), spec.not_after);
  X509_set_pubkey(cert.get(), key);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("faraday tests"), -1, -1, 0);
  if (!spec.no_cn) {
    check(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                     reinterpret_cast<const unsigned char*>(spec.cn.c_str()), -1,
                                     -1, 0) == 1,
          "CN");
  }
  X509* iss = issuer ? issuer : cert.get();
  X509_set_issuer_name(cert.get(), X509_get_subject_name(iss));
  if (spec.is_ca) {
    add_ext(cert.get(), iss, NID_basic_constraints, "critical,CA:TRUE");
    add_ext(cert.get(), iss, NID_key_usage, "critical,keyCertSign,cRLSign");
  } else {
    add_ext(cert.get(), iss, NID_basic_constraints, "critical,CA:FALSE");
    add_ext(cert.get(), iss, NID_key_usage, "critical,digitalSignature");
  }
  add_ext(cert.get(), iss, NID_subject_key_identifier, "hash");
  if (issuer) add_ext(cert.get(), iss, NID_authority_key_identifier, "keyid");
  if (!spec.dns_san.empty()) {
    add_ext(cert.get(), iss, NID_subject_alt_name, ("DNS:" + spec.dns_san).c_str());
  }
  check(X509_sign(cert.get(), issuer_key ? issuer_key : key, EVP_sha256()) > 0, "X509_sign");
  return cert;
}

}  // namespace

Identity copy_of(const Identity& id) {
  Identity copy{X509Ptr(X509_dup(id.cert.get())), PkeyPtr(), id.cert_path, id.key_path};
  EVP_PKEY_up_ref(id.key.get());
  copy.key.reset(id.key.get());
  return copy;
}

PkeyPtr make_key() {
  PkeyPtr key(EVP_EC_gen("P-256"));
  check(key != nullptr, "EVP_EC_gen");
  return key;
}

Pki::Pki(std::string dir, const std::string& ca_name) : dir_(std::move(dir)) {
  std::filesystem::create_directories(dir_);
  ca_.key = make_key();
  CertSpec spec(ca_name);
  spec.not_after = 86400 * 365;
  spec.is_ca = true;
  ca_.cert = make_cert(spec, ca_.key.get(), nullptr, nullptr, 1);
  write(ca_, "ca");
}

Identity Pki::issue(const CertSpec& spec) const {
  Identity id;
  id.key = make_key();
  id.cert = make_cert(spec, id.key.get(), ca_.cert.get(), ca_.key.get(), next_serial_++);
  return id;
}

void Pki::write(Identity& id, const std::string& name) const {
  id.cert_path = dir_ + "/" + name + ".pem";
  id.key_path = dir_ + "/" + name + ".key";
  FILE* f = fopen(id.cert_path.c_str(), "w");
  check(f && PEM_write_X509(f, id.cert.get()) == 1, "write cert");
  fclose(f);
  f = fopen(id.key_path.c_str(), "w");
  check(f && PEM_write_PrivateKey(f, id.key.get(), nullptr, nullptr, 0, nullptr, nullptr) == 1,
        "write key");
  fclose(f);
  chmod(id.key_path.c_str(), 0600);
}

void Pki::write_crl(const std::string& path, const std::vector<const X509*>& revoked) const {
  X509_CRL* crl = X509_CRL_new();
  check(crl != nullptr, "X509_CRL_new");
  X509_CRL_set_version(crl, 1);
  X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca_.cert.get()));
  ASN1_TIME* now = ASN1_TIME_new();
  X509_gmtime_adj(now, -60);
  X509_CRL_set1_lastUpdate(crl, now);
  X509_gmtime_adj(now, 86400);
  X509_CRL_set1_nextUpdate(crl, now);
  for (const X509* cert : revoked) {
    X509_REVOKED* r = X509_REVOKED_new();
    X509_REVOKED_set_serialNumber(r, const_cast<ASN1_INTEGER*>(X509_get0_serialNumber(cert)));
    X509_gmtime_adj(now, -60);
    X509_REVOKED_set_revocationDate(r, now);
    X509_CRL_add0_revoked(crl, r);
  }
  ASN1_TIME_free(now);
  X509_CRL_sort(crl);
  check(X509_CRL_sign(crl, ca_.key.get(), EVP_sha256()) > 0, "X509_CRL_sign");
  std::string tmp = path + ".tmp";
  FILE* f = fopen(tmp.c_str(), "w");
  check(f && PEM_write_X509_CRL(f, crl) == 1, "write crl");
  fclose(f);
  X509_CRL_free(crl);
  std::filesystem::rename(tmp, path);
}

}  // namespace faraday::testing
