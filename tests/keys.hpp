// Keys made by the test with OpenSSL directly (not through tokenflight), and their PEM text.
#ifndef TOKENFLIGHT_TESTS_KEYS_HPP
#define TOKENFLIGHT_TESTS_KEYS_HPP

#include <openssl/bio.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include <cstring>
#include <memory>
#include <string>

namespace test {

using pkey_ptr = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;

inline pkey_ptr make_rsa(unsigned bits = 2048) { return pkey_ptr(EVP_RSA_gen(bits), &EVP_PKEY_free); }
inline pkey_ptr make_ec(const char* curve = "P-256") { return pkey_ptr(EVP_EC_gen(curve), &EVP_PKEY_free); }

/// PEM of the private key (PKCS#8, encrypted with AES-256-CBC under `passphrase` when given), or
/// of the public key.
inline std::string pem_of(EVP_PKEY* k, bool private_part = true, const char* passphrase = nullptr) {
    std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), &BIO_free);
    if (!private_part) {
        PEM_write_bio_PUBKEY(bio.get(), k);
    } else if (passphrase) {
        PEM_write_bio_PKCS8PrivateKey(bio.get(), k, EVP_aes_256_cbc(), passphrase,
                                      static_cast<int>(std::strlen(passphrase)), nullptr, nullptr);
    } else {
        PEM_write_bio_PrivateKey(bio.get(), k, nullptr, nullptr, 0, nullptr, nullptr);
    }
    char* data = nullptr;
    const long n = BIO_get_mem_data(bio.get(), &data);
    return std::string(data, static_cast<std::size_t>(n));
}

} // namespace test

#endif
