// Test-time certificates: a CA and server certificates signed by it, made with OpenSSL in memory.
#ifndef TOKENFLIGHT_TESTS_TLS_CERTS_HPP
#define TOKENFLIGHT_TESTS_TLS_CERTS_HPP

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>
#include <stdexcept>
#include <string>

namespace test {

struct key_and_cert {
    std::string key_pem;
    std::string cert_pem;
};

namespace detail {
inline std::string to_pem(X509* cert) {
    std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), BIO_free);
    PEM_write_bio_X509(bio.get(), cert);
    char* data = nullptr;
    const long n = BIO_get_mem_data(bio.get(), &data);
    return std::string(data, static_cast<std::size_t>(n));
}
inline std::string to_pem(EVP_PKEY* key) {
    std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), BIO_free);
    PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr);
    char* data = nullptr;
    const long n = BIO_get_mem_data(bio.get(), &data);
    return std::string(data, static_cast<std::size_t>(n));
}
inline void add_ext(X509* cert, X509* issuer, int nid, const char* value) {
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
    if (!ext) throw std::runtime_error("X509V3_EXT_conf_nid failed");
    X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
}
inline std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> read_key(const std::string& pem) {
    std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), BIO_free);
    return {PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr), EVP_PKEY_free};
}
inline std::unique_ptr<X509, decltype(&X509_free)> read_cert(const std::string& pem) {
    std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), BIO_free);
    return {PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr), X509_free};
}
} // namespace detail

/// A certificate for `cn` with the given subjectAltName, signed by `ca` (self-signed CA when null),
/// valid from `not_before` to `not_after` seconds from now; `usage` is its extended key usage when
/// signed by `ca` ("clientAuth" for a client certificate; nullptr for an intermediate CA).
inline key_and_cert make_cert(const std::string& cn, const std::string& san, const key_and_cert* ca,
                              long not_before = -3600, long not_after = 24 * 3600, const char* usage = "serverAuth") {
    std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(EVP_EC_gen("P-256"), EVP_PKEY_free);
    std::unique_ptr<X509, decltype(&X509_free)> cert(X509_new(), X509_free);
    X509_set_version(cert.get(), 2);
    static long serial = 1;
    ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), ++serial);
    X509_gmtime_adj(X509_getm_notBefore(cert.get()), not_before);
    X509_gmtime_adj(X509_getm_notAfter(cert.get()), not_after);
    X509_set_pubkey(cert.get(), key.get());
    X509_NAME* name = X509_get_subject_name(cert.get());
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);

    auto ca_key = ca ? detail::read_key(ca->key_pem) : std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>(nullptr, EVP_PKEY_free);
    auto ca_cert = ca ? detail::read_cert(ca->cert_pem) : std::unique_ptr<X509, decltype(&X509_free)>(nullptr, X509_free);
    X509* issuer = ca ? ca_cert.get() : cert.get();
    X509_set_issuer_name(cert.get(), X509_get_subject_name(issuer));
    if (ca && usage) {
        detail::add_ext(cert.get(), issuer, NID_basic_constraints, "critical,CA:FALSE");
        detail::add_ext(cert.get(), issuer, NID_subject_alt_name, san.c_str());
        detail::add_ext(cert.get(), issuer, NID_ext_key_usage, usage);
    } else {
        detail::add_ext(cert.get(), issuer, NID_basic_constraints, "critical,CA:TRUE");
        detail::add_ext(cert.get(), issuer, NID_key_usage, "critical,keyCertSign,cRLSign");
        detail::add_ext(cert.get(), issuer, NID_subject_key_identifier, "hash");
    }
    X509_sign(cert.get(), ca ? ca_key.get() : key.get(), EVP_sha256());
    return {detail::to_pem(key.get()), detail::to_pem(cert.get())};
}

} // namespace test

#endif
