// A test CA, a server TLS context with a certificate it signed, and an unrelated CA, with both CA
// certificates in temporary files for tls_options::ca_file.
#ifndef TOKENFLIGHT_TESTS_TLS_FIXTURE_HPP
#define TOKENFLIGHT_TESTS_TLS_FIXTURE_HPP

#include "temp_file.hpp"
#include "tls_certs.hpp"

#include <tokenflight/http/connection_pool.hpp>

#include <boost/asio/buffer.hpp>
#include <boost/asio/ssl/context.hpp>

namespace test {

struct tls_fixture {
    key_and_cert ca = make_cert("tokenflight test CA", "", nullptr);
    key_and_cert other_ca = make_cert("untrusted CA", "", nullptr);
    temp_file ca_file{ca.cert_pem, "tokenflight-test-ca"};
    temp_file other_ca_file{other_ca.cert_pem, "tokenflight-test-other-ca"};
    boost::asio::ssl::context server_ctx{boost::asio::ssl::context::tls_server};

    /// Serves a certificate with subjectAltName `san`, signed by `ca`, valid from `not_before` to
    /// `not_after` seconds from now.
    explicit tls_fixture(const std::string& san = "DNS:localhost,IP:127.0.0.1", long not_before = -3600,
                         long not_after = 24 * 3600) {
        const auto served = make_cert("server", san, &ca, not_before, not_after);
        server_ctx.use_certificate_chain(boost::asio::buffer(served.cert_pem));
        server_ctx.use_private_key(boost::asio::buffer(served.key_pem), boost::asio::ssl::context::pem);
    }

    /// Whether verification trusts the system's CA store too.
    enum class system_cas { ignored, trusted };

    /// Verification against `ca_file` only (plus the system store when asked).
    static tokenflight::http::tls_options trust(const std::string& ca_file, system_cas system = system_cas::ignored) {
        tokenflight::http::tls_options t;
        t.use_system_store = system == system_cas::trusted;
        t.ca_file = ca_file;
        return t;
    }
};

} // namespace test

#endif
