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
    auto certs = memory_bio(certificate_chain);
    if (!certs) return error_code(errc::invalid_client_certificate);
    id->cert = PEM_read_bio_X509(certs.get(), nullptr, &tokenflight::detail::no_passphrase, nullptr);
    if (!id->cert) return error_code(errc::invalid_client_certificate);
    id->chain = sk_X509_new_null();
    if (!id->chain) return error_code(errc::invalid_client_certificate);
    while (X509* next = PEM_read_bio_X509(certs.get(), nullptr, &tokenflight::detail::no_passphrase, nullptr))
        if (!sk_X509_push(id->chain, next)) {
            X509_free(next);
            return error_code(errc::invalid_client_certificate);
        }

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
    const bool ok = SSL_use_certificate(ssl, i.cert) == 1 && SSL_use_PrivateKey(ssl, i.key) == 1 &&
                    (sk_X509_num(i.chain) == 0 || SSL_set1_chain(ssl, i.chain) == 1);
    if (!ok) ERR_clear_error();
    return ok;
}

} // namespace tokenflight::detail
