#include <tokenflight/dpop.hpp>
#include <tokenflight/error.hpp>
#include <tokenflight/http/prepared_request.hpp>

#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <openssl/sha.h>

namespace tokenflight {

namespace {

std::string sha256_b64url(std::string_view s) {
    unsigned char digest[SHA256_DIGEST_LENGTH];
    SHA256(reinterpret_cast<const unsigned char*>(s.data()), s.size(), digest);
    return base64url_encode(std::string_view(reinterpret_cast<const char*>(digest), sizeof digest));
}

// RFC 9449 NQCHAR: %x21 / %x23-5B / %x5D-7E; a nonce is at least one of them.
bool is_nonce(std::string_view s) {
    if (s.empty() || s.size() > http::max_dpop_nonce_size) return false;
    for (unsigned char c : s)
        if (c < 0x21 || c > 0x7E || c == '"' || c == '\\') return false;
    return true;
}

} // namespace

dpop_prover::dpop_prover(signing_key key, std::optional<jws_alg> alg)
    : key_(std::move(key)), alg_(alg.value_or(key_.default_alg())), jkt_(key_.jwk_thumbprint()) {
    boost::json::object header;
    header["typ"] = "dpop+jwt";
    header["alg"] = to_string(alg_);
    header["jwk"] = boost::json::parse(key_.public_jwk());
    header_ = base64url_encode(boost::json::serialize(header));
    header_ += '.';
}

boost::system::result<std::string> dpop_prover::proof(std::string_view htm, std::string_view htu,
                                                      std::chrono::system_clock::time_point now,
                                                      std::string_view jti, std::string_view nonce,
                                                      std::string_view access_token) const {
    boost::json::object claims;
    claims["jti"] = jti;
    claims["htm"] = htm;
    claims["htu"] = htu;
    claims["iat"] = std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
    if (!nonce.empty()) claims["nonce"] = nonce;
    if (!access_token.empty()) claims["ath"] = sha256_b64url(access_token);
    std::string jwt = header_;
    jwt += base64url_encode(boost::json::serialize(claims));
    auto signature = key_.sign(alg_, jwt);
    if (!signature) return signature.error();
    jwt += '.';
    jwt += base64url_encode(*signature);
    return jwt;
}

std::string dpop_htu(const http::origin& origin, std::string_view target) {
    const auto end = target.find_first_of("?#");
    std::string htu = origin.tls ? "https://" : "http://";
    htu += origin.authority();
    htu += target.substr(0, end);
    return htu;
}

std::string dpop_nonces::get(const http::origin& o) const {
    std::lock_guard lock(mutex_);
    auto it = nonces_.find(o);
    return it == nonces_.end() ? std::string() : it->second;
}

bool dpop_nonces::update(const http::origin& o, std::string_view nonce) {
    if (!is_nonce(nonce)) return false;
    std::lock_guard lock(mutex_);
    auto& held = nonces_[o];
    if (held == nonce) return false;
    held = std::string(nonce);
    return true;
}

} // namespace tokenflight
