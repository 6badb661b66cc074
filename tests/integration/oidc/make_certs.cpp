// Writes the certificates of an oidc-provider run with mutual TLS into a directory (see
// server.mjs, MTLS_DIR): a CA, the HTTPS listener's certificate for 127.0.0.1 signed by it, the
// tf-mtls client's certificate signed by it (CN=tf-mtls), and the tf-mtls-self client's
// self-signed certificate; each with its key (`.key`, PKCS#8 PEM).
//   tokenflight_oidc_certs DIR
#include "../../tls_certs.hpp"

#include <filesystem>
#include <fstream>
#include <iostream>

namespace {
void write(const std::filesystem::path& dir, const std::string& name, const test::key_and_cert& kc) {
    std::ofstream(dir / (name + ".pem")) << kc.cert_pem;
    std::ofstream(dir / (name + ".key")) << kc.key_pem;
    std::filesystem::permissions(dir / (name + ".key"), std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
}
} // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::cerr << "usage: tokenflight_oidc_certs DIR\n";
        return 2;
    }
    const std::filesystem::path dir = argv[1];
    const auto ca = test::make_cert("tokenflight oidc test CA", "", nullptr);
    write(dir, "ca", ca);
    write(dir, "server", test::make_cert("server", "DNS:localhost,IP:127.0.0.1", &ca));
    write(dir, "client", test::make_cert("tf-mtls", "DNS:tf-mtls.test", &ca, -3600, 24 * 3600, "clientAuth"));
    write(dir, "self", test::make_cert("tf-mtls-self", "", nullptr));
    return std::cout.good() ? 0 : 1;
}
