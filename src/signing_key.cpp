#include <tokenflight/signing_key.hpp>
#include <tokenflight/error.hpp>

#include "pem_file.hpp"

#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>

#include <algorithm>
#include <array>
#include <mutex>
#include <vector>
#include <fstream>
#include <iterator>
#include <ostream>

namespace tokenflight {

struct signing_key::impl {
    EVP_PKEY* pkey;
    kind type;
    int bits;
    explicit impl(EVP_PKEY* p, kind k, int b) noexcept : pkey(p), type(k), bits(b) {}
    impl(const impl&) = delete;
    impl& operator=(const impl&) = delete;
    // OpenSSL frees the private numbers with BN_clear_free: the key is wiped with the last copy
    // (the signing contexts below hold references to it, and go first).
    ~impl() {
        for (auto& contexts : idle)
            for (auto* c : contexts) EVP_PKEY_CTX_free(c);
        EVP_PKEY_free(pkey);
    }

    // Signing contexts ready to sign a SHA-256 digest with one algorithm, kept for reuse: setting
    // one up (fetching the provider's implementation, exporting the key to it) costs more than
    // the signature itself. One per concurrent signer at most; taken and given back under a lock.
    EVP_PKEY_CTX* take(jws_alg a) const {
        {
            std::lock_guard lock(idle_mutex);
            auto& contexts = idle[static_cast<std::size_t>(a)];
            if (!contexts.empty()) {
                auto* c = contexts.back();
                contexts.pop_back();
                return c;
            }
        }
        EVP_PKEY_CTX* c = EVP_PKEY_CTX_new_from_pkey(nullptr, pkey, nullptr);
        const bool ok = c && EVP_PKEY_sign_init(c) == 1 && EVP_PKEY_CTX_set_signature_md(c, EVP_sha256()) == 1 &&
                        (a != jws_alg::ps256 || (EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_PSS_PADDING) == 1 &&
                                                 EVP_PKEY_CTX_set_rsa_pss_saltlen(c, RSA_PSS_SALTLEN_DIGEST) == 1)) &&
                        (a != jws_alg::rs256 || EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_PADDING) == 1);
        if (!ok) {
            EVP_PKEY_CTX_free(c);
            return nullptr;
        }
        return c;
    }
    void give_back(jws_alg a, EVP_PKEY_CTX* c) const {
        std::lock_guard lock(idle_mutex);
        idle[static_cast<std::size_t>(a)].push_back(c);
    }

    mutable std::mutex idle_mutex;
    mutable std::vector<EVP_PKEY_CTX*> idle[3]; // by jws_alg: rs256, ps256, es256
};

namespace {

constexpr std::array<std::string_view, 4> alg_names{"RS256", "PS256", "ES256", "HS256"};

struct bio_deleter {
    void operator()(BIO* b) const noexcept { BIO_free(b); }
};
struct bn_deleter {
    void operator()(BIGNUM* b) const noexcept { BN_free(b); }
};
struct sig_deleter {
    void operator()(ECDSA_SIG* s) const noexcept { ECDSA_SIG_free(s); }
};
using bn_ptr = std::unique_ptr<BIGNUM, bn_deleter>;

bn_ptr bn_param(EVP_PKEY* pkey, const char* name) {
    BIGNUM* bn = nullptr;
    EVP_PKEY_get_bn_param(pkey, name, &bn);
    return bn_ptr(bn);
}

std::string bn_bytes(const BIGNUM* bn, int width = 0) {
    if (!bn) return {};
    std::string out(static_cast<std::size_t>(width ? width : BN_num_bytes(bn)), '\0');
    BN_bn2binpad(bn, reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(out.size()));
    return out;
}

// DER ECDSA-Sig-Value to JWS's fixed-width r || s.
std::optional<std::string> der_to_jose(std::string_view der, int width) {
    const auto* p = reinterpret_cast<const unsigned char*>(der.data());
    std::unique_ptr<ECDSA_SIG, sig_deleter> sig(d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der.size())));
    if (!sig) return std::nullopt;
    const BIGNUM* r = nullptr;
    const BIGNUM* s = nullptr;
    ECDSA_SIG_get0(sig.get(), &r, &s);
    return bn_bytes(r, width) + bn_bytes(s, width);
}

} // namespace

std::string_view to_string(jws_alg a) noexcept { return alg_names[static_cast<std::size_t>(a)]; }

std::optional<jws_alg> parse_jws_alg(std::string_view name) noexcept {
    for (std::size_t i = 0; i < alg_names.size(); ++i)
        if (alg_names[i] == name) return static_cast<jws_alg>(i);
    return std::nullopt;
}

std::string base64url_encode(std::string_view bytes) {
    static constexpr char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    std::string out;
    out.reserve((bytes.size() * 4 + 2) / 3);
    std::size_t i = 0;
    const auto at = [&](std::size_t k) { return static_cast<unsigned>(static_cast<unsigned char>(bytes[k])); };
    for (; i + 2 < bytes.size(); i += 3) {
        const unsigned n = at(i) << 16 | at(i + 1) << 8 | at(i + 2);
        for (int shift : {18, 12, 6, 0}) out += alphabet[(n >> shift) & 63];
    }
    if (i < bytes.size()) {
        const unsigned n = at(i) << 16 | (i + 1 < bytes.size() ? at(i + 1) << 8 : 0);
        out += alphabet[n >> 18];
        out += alphabet[(n >> 12) & 63];
        if (i + 1 < bytes.size()) out += alphabet[(n >> 6) & 63];
    }
    return out;
}

boost::system::result<signing_key> signing_key::adopt(EVP_PKEY* pkey) {
    if (!pkey) return error_code(errc::invalid_signing_key);
    std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> owner(pkey, &EVP_PKEY_free);
    const int bits = EVP_PKEY_get_bits(pkey);
    if (EVP_PKEY_get_base_id(pkey) == EVP_PKEY_RSA) {
        if (bits < 2048) return error_code(errc::invalid_signing_key); // RFC 7518 section 3.3
        return signing_key(std::make_shared<const impl>(owner.release(), kind::rsa, bits));
    }
    if (EVP_PKEY_get_base_id(pkey) == EVP_PKEY_EC) {
        char group[64] = {};
        std::size_t len = 0;
        if (EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group, &len) != 1 ||
            std::string_view(group, len) != "prime256v1")
            return error_code(errc::invalid_signing_key);
        return signing_key(std::make_shared<const impl>(owner.release(), kind::ec_p256, bits));
    }
    return error_code(errc::invalid_signing_key);
}

boost::system::result<signing_key> signing_key::from_pem(const secret& pem) {
    const auto text = pem.reveal();
    std::unique_ptr<BIO, bio_deleter> bio(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
    if (!bio) return error_code(errc::invalid_signing_key);
    return adopt(PEM_read_bio_PrivateKey(bio.get(), nullptr, &detail::no_passphrase, nullptr));
}

boost::system::result<signing_key> signing_key::load_pem_file(const std::filesystem::path& path) {
    auto pem = detail::read_pem_file(path, errc::invalid_signing_key);
    if (!pem) return pem.error();
    return from_pem(*pem);
}

namespace detail {

boost::system::result<secret> read_pem_file(const std::filesystem::path& path, error_code too_large) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return error_code(errno ? errno : ENOENT, boost::system::generic_category());
    std::string buffer(pem_file_limit + 1, '\0');
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    const auto got = static_cast<std::size_t>(in.gcount());
    if (in.bad()) return error_code(EIO, boost::system::generic_category());
    secret pem(std::string_view(buffer.data(), std::min(got, pem_file_limit)));
    OPENSSL_cleanse(buffer.data(), buffer.size());
    if (got > pem_file_limit) return too_large;
    return pem;
}

int no_passphrase(char*, int, int, void*) { return -1; }

} // namespace detail

signing_key signing_key::generate_p256() {
    EVP_PKEY* pkey = EVP_EC_gen("P-256");
    auto adopted = adopt(pkey);
    if (!adopted) throw boost::system::system_error(adopted.error(), "EC P-256 key generation");
    return std::move(*adopted);
}

signing_key::kind signing_key::type() const noexcept { return impl_->type; }
int signing_key::bits() const noexcept { return impl_->bits; }

jws_alg signing_key::default_alg() const noexcept { return impl_->type == kind::rsa ? jws_alg::rs256 : jws_alg::es256; }

bool signing_key::supports(jws_alg a) const noexcept {
    switch (a) {
    case jws_alg::rs256:
    case jws_alg::ps256: return impl_->type == kind::rsa;
    case jws_alg::es256: return impl_->type == kind::ec_p256;
    case jws_alg::hs256: return false;
    }
    return false;
}

boost::system::result<std::string> signing_key::sign(jws_alg a, std::string_view input) const {
    if (!supports(a)) return error_code(errc::key_algorithm_mismatch);
    unsigned char digest[SHA256_DIGEST_LENGTH];
    SHA256(reinterpret_cast<const unsigned char*>(input.data()), input.size(), digest);
    EVP_PKEY_CTX* ctx = impl_->take(a);
    if (!ctx) return error_code(errc::invalid_signing_key);
    std::size_t len = 0;
    std::string sig;
    bool ok = EVP_PKEY_sign(ctx, nullptr, &len, digest, sizeof digest) == 1;
    if (ok) {
        sig.resize(len);
        ok = EVP_PKEY_sign(ctx, reinterpret_cast<unsigned char*>(sig.data()), &len, digest, sizeof digest) == 1;
    }
    impl_->give_back(a, ctx);
    if (!ok) return error_code(errc::invalid_signing_key);
    sig.resize(len);
    if (a != jws_alg::es256) return sig;
    auto jose = der_to_jose(sig, 32);
    if (!jose) return error_code(errc::invalid_signing_key);
    return std::move(*jose);
}

// Members in lexicographic order, no whitespace: the form RFC 7638 hashes.
std::string signing_key::public_jwk() const {
    boost::json::object jwk;
    if (impl_->type == kind::rsa) {
        jwk["e"] = base64url_encode(bn_bytes(bn_param(impl_->pkey, OSSL_PKEY_PARAM_RSA_E).get()));
        jwk["kty"] = "RSA";
        jwk["n"] = base64url_encode(bn_bytes(bn_param(impl_->pkey, OSSL_PKEY_PARAM_RSA_N).get()));
    } else {
        jwk["crv"] = "P-256";
        jwk["kty"] = "EC";
        jwk["x"] = base64url_encode(bn_bytes(bn_param(impl_->pkey, OSSL_PKEY_PARAM_EC_PUB_X).get(), 32));
        jwk["y"] = base64url_encode(bn_bytes(bn_param(impl_->pkey, OSSL_PKEY_PARAM_EC_PUB_Y).get(), 32));
    }
    return boost::json::serialize(jwk);
}

std::string signing_key::jwk_thumbprint() const {
    const std::string jwk = public_jwk();
    unsigned char digest[SHA256_DIGEST_LENGTH];
    SHA256(reinterpret_cast<const unsigned char*>(jwk.data()), jwk.size(), digest);
    return base64url_encode(std::string_view(reinterpret_cast<const char*>(digest), sizeof digest));
}

std::ostream& operator<<(std::ostream& os, const signing_key& k) {
    return os << "signing_key(" << (k.type() == signing_key::kind::rsa ? "RSA " : "EC P-") << k.bits() << ')';
}

std::string hs256_sign(const secret& key, std::string_view input) {
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    const auto k = key.reveal();
    HMAC(EVP_sha256(), k.data(), static_cast<int>(k.size()), reinterpret_cast<const unsigned char*>(input.data()),
         input.size(), mac, &len);
    std::string out(reinterpret_cast<const char*>(mac), len);
    OPENSSL_cleanse(mac, sizeof mac);
    return out;
}

} // namespace tokenflight
