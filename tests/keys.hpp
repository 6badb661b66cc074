// Keys made by the test with OpenSSL directly (not through tokenflight), and their PEM text.
#ifndef TOKENFLIGHT_TESTS_KEYS_HPP
#define TOKENFLIGHT_TESTS_KEYS_HPP

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include <cstring>
#include <memory>
#include <string>
#include <string_view>

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

/// Verifies a JWS signature (raw, as in the JWT: r || s for ES256) over `input` with `k`, for
/// "RS256", "PS256" (salt of the digest's length, RFC 7518) or "ES256", with OpenSSL directly.
inline bool verify_jws(EVP_PKEY* k, std::string_view alg, std::string_view input, std::string sig) {
    if (alg == "ES256") { // r || s back to DER
        if (sig.size() != 64) return false;
        ECDSA_SIG* s = ECDSA_SIG_new();
        ECDSA_SIG_set0(s, BN_bin2bn(reinterpret_cast<const unsigned char*>(sig.data()), 32, nullptr),
                       BN_bin2bn(reinterpret_cast<const unsigned char*>(sig.data()) + 32, 32, nullptr));
        unsigned char* der = nullptr;
        const int n = i2d_ECDSA_SIG(s, &der);
        sig.assign(reinterpret_cast<char*>(der), static_cast<std::size_t>(n));
        OPENSSL_free(der);
        ECDSA_SIG_free(s);
    }
    std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
    EVP_PKEY_CTX* pctx = nullptr;
    if (EVP_DigestVerifyInit(ctx.get(), &pctx, EVP_sha256(), nullptr, k) != 1) return false;
    if (alg == "PS256") {
        EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING);
        EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, 32);
    }
    return EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(sig.data()), sig.size(),
                            reinterpret_cast<const unsigned char*>(input.data()), input.size()) == 1;
}

} // namespace test

#endif
