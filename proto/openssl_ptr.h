// openssl_ptr.h: owning pointers for the OpenSSL objects the project makes
// (certificates, keys, CRLs, stores, ...), each freed by its own OpenSSL
// function. Used by the TLS transport's callers, faradayctl's CA and tests.
#pragma once

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>

namespace faraday::proto {

template <typename T, void (*F)(T*)>
struct OpensslFree {
  void operator()(T* p) const { F(p); }
};
template <typename T, void (*F)(T*)>
using OpensslPtr = std::unique_ptr<T, OpensslFree<T, F>>;

using X509Ptr = OpensslPtr<X509, X509_free>;
using PkeyPtr = OpensslPtr<EVP_PKEY, EVP_PKEY_free>;
using CrlPtr = OpensslPtr<X509_CRL, X509_CRL_free>;
using BioPtr = OpensslPtr<BIO, BIO_free_all>;
using ExtPtr = OpensslPtr<X509_EXTENSION, X509_EXTENSION_free>;
using Asn1IntegerPtr = OpensslPtr<ASN1_INTEGER, ASN1_INTEGER_free>;
using Asn1TimePtr = OpensslPtr<ASN1_TIME, ASN1_TIME_free>;
using StorePtr = OpensslPtr<X509_STORE, X509_STORE_free>;
using StoreCtxPtr = OpensslPtr<X509_STORE_CTX, X509_STORE_CTX_free>;

}  // namespace faraday::proto
