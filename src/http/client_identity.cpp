#include <tokenflight/http/client_identity.hpp>

#include <tokenflight/error.hpp>
#include <tokenflight/signing_key.hpp> // base64url_encode

#include "../access.hpp"
#include "../pem_file.hpp"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <ostream>

namespace tokenflight::http {

struct client_identity::impl {
    X509* cert = nullptr;
    STACK_OF(X509)* chain = nullptr; // the intermediates sent after it; may be empty
    EVP_PKEY* key = nullptr;          // OpenSSL clears its private numbers when it frees it
    std::string thumbprint, subject;

    impl() = default;
    impl(const impl&) = delete;
    impl& operator=(const impl&) = delete;
    ~impl() {
        X509_free(cert);
        sk_X509_pop_free(chain, X509_free);
        EVP_PKEY_free(key);
    }
};

namespace {

struct bio_deleter {
    void operator()(BIO* b) const noexcept { BIO_free(b); }
};
using bio_ptr = std::unique_ptr<BIO, bio_deleter>;

bio_ptr memory_bio(std::string_view text) {
    return bio_ptr(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
}

std::string thumbprint_of(X509* cert) {
    unsigned char* der = nullptr;
    const int n = i2d_X509(cert, &der);
    if (n <= 0) return {};
    auto thumbprint = certificate_thumbprint(std::string_view(reinterpret_cast<const char*>(der), static_cast<std::size_t>(n)));
    OPENSSL_free(der);
    return thumbprint;
}

std::string subject_of(X509* cert) {
    bio_ptr out(BIO_new(BIO_s_mem()));
    if (!out || X509_NAME_print_ex(out.get(), X509_get_subject_name(cert), 0, XN_FLAG_RFC2253) < 0) return {};
    char* data = nullptr;
    const long n = BIO_get_mem_data(out.get(), &data);
    return std::string(data, static_cast<std::size_t>(n > 0 ? n : 0));
}

// The certificates of a PEM text, in order. Blocks are read into OpenSSL's secure heap and wiped
// when freed, so that a private key in the same text (one file holding both) leaves no copy
// behind; other blocks than certificates are skipped. False for a certificate that does not parse
// or a block that is not PEM (never silently dropped).
bool read_certificates(std::string_view text, STACK_OF(X509)* out) {
    auto bio = memory_bio(text);
    if (!bio) return false;
    for (;;) {
        char* name = nullptr;
        char* header = nullptr;
        unsigned char* data = nullptr;
        long len = 0;
        if (PEM_read_bio_ex(bio.get(), &name, &header, &data, &len, PEM_FLAG_SECURE | PEM_FLAG_EAY_COMPATIBLE) != 1) {
            const unsigned long e = ERR_peek_last_error();
            return ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE; // the end
        }
        bool ok = true;
        if (std::string_view(name) == PEM_STRING_X509 || std::string_view(name) == PEM_STRING_X509_OLD) {
            const unsigned char* p = data;
            X509* cert = d2i_X509(nullptr, &p, len);
            ok = cert && p == data + len && sk_X509_push(out, cert) > 0;
            if (!ok) X509_free(cert);
        }
        OPENSSL_secure_free(name);
        OPENSSL_secure_free(header);
        OPENSSL_secure_clear_free(data, static_cast<std::size_t>(len));
        if (!ok) return false;
    }
}

// What parsing leaves in OpenSSL's per-thread error queue (the end of the PEM, a refused
// passphrase) must not be read later as the error of a TLS operation on this thread.
struct clear_openssl_errors {
    ~clear_openssl_errors() { ERR_clear_error(); }
};

} // namespace

boost::system::result<client_identity> client_identity::from_pem(std::string_view certificate_chain,
                                                                  const secret& private_key) {
    clear_openssl_errors cleared;
    auto id = std::make_shared<impl>();
    id->chain = sk_X509_new_null();
    if (!id->chain || !read_certificates(certificate_chain, id->chain) || sk_X509_num(id->chain) == 0)
        return error_code(errc::invalid_client_certificate);
    id->cert = sk_X509_shift(id->chain); // the first is the client's; the rest go with it

    const auto text = private_key.reveal();
    auto key = memory_bio(text);
    if (!key) return error_code(errc::invalid_client_certificate);
    id->key = PEM_read_bio_PrivateKey(key.get(), nullptr, &tokenflight::detail::no_passphrase, nullptr);
    if (!id->key) return error_code(errc::invalid_client_certificate);
    if (X509_check_private_key(id->cert, id->key) != 1) return error_code(errc::certificate_key_mismatch);

    id->thumbprint = thumbprint_of(id->cert);
    id->subject = subject_of(id->cert);
    if (id->thumbprint.empty()) return error_code(errc::invalid_client_certificate);
    return client_identity(std::move(id));
}

boost::system::result<client_identity> client_identity::load_pem_files(const std::filesystem::path& certificate_chain,
                                                                       const std::filesystem::path& private_key) {
    auto certs = tokenflight::detail::read_pem_file(certificate_chain, errc::invalid_client_certificate);
    if (!certs) return certs.error();
    auto key = tokenflight::detail::read_pem_file(private_key, errc::invalid_client_certificate);
    if (!key) return key.error();
    return from_pem(certs->reveal(), *key);
}

std::string certificate_thumbprint(std::string_view certificate_der) {
    unsigned char digest[SHA256_DIGEST_LENGTH];
    SHA256(reinterpret_cast<const unsigned char*>(certificate_der.data()), certificate_der.size(), digest);
    return base64url_encode(std::string_view(reinterpret_cast<const char*>(digest), sizeof digest));
}

std::string_view client_identity::thumbprint() const noexcept {
    return impl_ ? std::string_view(impl_->thumbprint) : std::string_view();
}

std::string_view client_identity::subject() const noexcept {
    return impl_ ? std::string_view(impl_->subject) : std::string_view();
}

std::ostream& operator<<(std::ostream& os, const client_identity& id) {
    if (id.empty()) return os << "client_identity()";
    return os << "client_identity(" << id.subject() << ", x5t#S256=" << id.thumbprint() << ')';
}

} // namespace tokenflight::http

namespace tokenflight::detail {

bool access::present(const http::client_identity& id, ssl_st* ssl) noexcept {
    if (!id.impl_) return true;
    const auto& i = *id.impl_;
    // Nothing of a certificate the shared context may hold (configure_context) goes with it:
    // neither its chain nor, in TLS 1.3's choice by key type, the certificate itself.
    SSL_certs_clear(ssl);
    const bool ok = SSL_use_certificate(ssl, i.cert) == 1 && SSL_use_PrivateKey(ssl, i.key) == 1 &&
                    SSL_set1_chain(ssl, i.chain) == 1;
    if (!ok) ERR_clear_error();
    return ok;
}

} // namespace tokenflight::detail
