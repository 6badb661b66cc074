// What a proof or an assertion costs: the signing work tokenflight adds to a request.
//
//   bench_signing [--benchmark_format=json]
//
//   DpopProofES256      one DPoP proof for an API request (claims with nonce and ath, one P-256
//                       ECDSA signature): the cost DPoP adds to every request
//   DpopProofPS256      the same with a 2048-bit RSA key and PS256, for comparison
//   ClientAssertion/*   one client assertion per token request (private_key_jwt RS256, PS256,
//                       ES256; client_secret_jwt HS256): paid once per token, not per request
#include <tokenflight/dpop.hpp>
#include <tokenflight/token_endpoint.hpp>

#include <benchmark/benchmark.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include <chrono>
#include <memory>
#include <string>

namespace tf = tokenflight;

namespace {

tf::signing_key rsa_key() {
    std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> k(EVP_RSA_gen(2048), &EVP_PKEY_free);
    std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), &BIO_free);
    PEM_write_bio_PrivateKey(bio.get(), k.get(), nullptr, nullptr, 0, nullptr, nullptr);
    char* data = nullptr;
    const long n = BIO_get_mem_data(bio.get(), &data);
    return tf::signing_key::from_pem(tf::secret(std::string_view(data, static_cast<std::size_t>(n)))).value();
}

const std::string token(800, 'T'); // a JWT-sized access token, hashed into ath

void proof(benchmark::State& state, const tf::dpop_prover& prover) {
    const auto now = std::chrono::system_clock::now();
    for (auto _ : state) {
        auto p = prover.proof("GET", "https://api.example/v1/items", now, tf::random_jti(), "nonce-1", token);
        benchmark::DoNotOptimize(p);
    }
}

void DpopProofES256(benchmark::State& state) { proof(state, tf::dpop_prover(tf::signing_key::generate_p256())); }
void DpopProofPS256(benchmark::State& state) { proof(state, tf::dpop_prover(rsa_key(), tf::jws_alg::ps256)); }

void ClientAssertion(benchmark::State& state, tf::client_auth method, std::optional<tf::jws_alg> alg) {
    tf::credentials c;
    c.client_id = "bench-client";
    c.client_secret = tf::secret("a-shared-secret-long-enough-for-hs256-0123456789");
    if (method == tf::client_auth::private_key_jwt)
        c.assertion.key = *alg == tf::jws_alg::es256 ? tf::signing_key::generate_p256() : rsa_key();
    c.assertion.alg = alg;
    const auto now = std::chrono::system_clock::now();
    for (auto _ : state) {
        auto a = tf::make_client_assertion(c, method, "https://as.example/token", now, tf::random_jti());
        benchmark::DoNotOptimize(a);
    }
}

} // namespace

BENCHMARK(DpopProofES256);
BENCHMARK(DpopProofPS256);
BENCHMARK_CAPTURE(ClientAssertion, RS256, tf::client_auth::private_key_jwt, tf::jws_alg::rs256);
BENCHMARK_CAPTURE(ClientAssertion, PS256, tf::client_auth::private_key_jwt, tf::jws_alg::ps256);
BENCHMARK_CAPTURE(ClientAssertion, ES256, tf::client_auth::private_key_jwt, tf::jws_alg::es256);
BENCHMARK_CAPTURE(ClientAssertion, HS256, tf::client_auth::client_secret_jwt, tf::jws_alg::hs256);
BENCHMARK_MAIN();
