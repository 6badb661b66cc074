// A real nginx (Debian's nginx-light, which has http_v2) for a test: one worker on three free
// 127.0.0.1 ports, HTTP/2 over TLS (ALPN h2), HTTP/1.1 over TLS only (its ALPN picks
// http/1.1), and h2c with prior knowledge; the certificate is made by the test (tls_certs.hpp).
// Stopped (SIGTERM, then SIGKILL) on destruction.
//
// Routes, the same on each port:
//   /          200 "ok\n" with an Authorization header, 401 without (as benchmarks/nginx.sh)
//   /proto     the protocol nginx served the request with: "HTTP/2.0" or "HTTP/1.1"
//   /fields    "<x-custom>|<host>|<authorization>": what nginx received
#ifndef TOKENFLIGHT_TESTS_NGINX_SERVER_HPP
#define TOKENFLIGHT_TESTS_NGINX_SERVER_HPP

#include <doctest/doctest.h>

#include "ports.hpp"
#include "temp_file.hpp"
#include "tls_certs.hpp"

#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

namespace test {

class nginx_server {
public:
    nginx_server()
        : h2_port_(free_port()), h1_port_(free_port()), h2c_port_(free_port()),
          dir_(std::filesystem::temp_directory_path() / ("tokenflight-nginx-" + std::to_string(::getpid()) + "-" +
                                                         std::to_string(h2_port_))) {
        REQUIRE_MESSAGE(::access("/usr/sbin/nginx", X_OK) == 0, "nginx is not installed (apt-get install nginx-light)");
        std::filesystem::create_directories(dir_);
        ca_ = make_cert("tokenflight test CA", "", nullptr);
        const auto served = make_cert("server", "DNS:localhost,IP:127.0.0.1", &ca_);
        write("cert.pem", served.cert_pem);
        write("key.pem", served.key_pem);
        write("ca.pem", ca_.cert_pem);
        const std::string d = dir_.string();
        const std::string routes = R"(
        location = /proto { return 200 "$server_protocol"; }
        location = /fields { return 200 "$http_x_custom|$host|$http_authorization"; }
        location / {
            if ($http_authorization = "") { return 401; }
            return 200 "ok\n";
        })";
        const std::string tls = "ssl_certificate " + d + "/cert.pem; ssl_certificate_key " + d + "/key.pem;";
        write("nginx.conf", "worker_processes 1;\ndaemon off;\npid " + d + "/nginx.pid;\nerror_log " + d +
                                "/error.log warn;\nevents { worker_connections 4096; }\nhttp {\n"
                                "    access_log off;\n    keepalive_requests 1000000;\n"
                                "    client_body_temp_path " + d + "/body;\n    proxy_temp_path " + d + "/proxy;\n"
                                "    fastcgi_temp_path " + d + "/fastcgi;\n    uwsgi_temp_path " + d + "/uwsgi;\n"
                                "    scgi_temp_path " + d + "/scgi;\n"
                                "    server { listen 127.0.0.1:" + std::to_string(h2_port_) + " ssl http2; " + tls + routes + "\n    }\n"
                                "    server { listen 127.0.0.1:" + std::to_string(h1_port_) + " ssl; " + tls + routes + "\n    }\n"
                                "    server { listen 127.0.0.1:" + std::to_string(h2c_port_) + " http2;" + routes + "\n    }\n}\n");
        std::vector<std::string> args{"nginx", "-c", d + "/nginx.conf", "-p", d, "-e", d + "/error.log"};
        std::vector<char*> argv; // built before the fork: the child of a threaded process may only exec
        for (auto& a : args) argv.push_back(a.data());
        argv.push_back(nullptr);
        pid_ = ::fork();
        REQUIRE(pid_ >= 0);
        if (pid_ == 0) {
            ::prctl(PR_SET_PDEATHSIG, SIGKILL); // a test killed (ctest's timeout) takes its server along
            ::execv("/usr/sbin/nginx", argv.data());
            ::_exit(127);
        }
        for (int i = 0; i < 200; ++i) {
            if (accepts(h2_port_) && accepts(h1_port_) && accepts(h2c_port_)) return;
            int status = 0;
            if (::waitpid(pid_, &status, WNOHANG) == pid_) {
                pid_ = -1;
                FAIL("nginx exited at start: " << read("error.log"));
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
        FAIL("nginx did not come up in 10 s: " << read("error.log"));
    }
    ~nginx_server() {
        if (pid_ > 0) {
            ::kill(pid_, SIGTERM);
            int status = 0;
            for (int i = 0; i < 100 && ::waitpid(pid_, &status, WNOHANG) == 0; ++i)
                std::this_thread::sleep_for(std::chrono::milliseconds(20));
            if (::waitpid(pid_, &status, WNOHANG) == 0) {
                ::kill(pid_, SIGKILL);
                ::waitpid(pid_, &status, 0);
            }
        }
        std::error_code ec;
        std::filesystem::remove_all(dir_, ec);
    }
    nginx_server(const nginx_server&) = delete;
    nginx_server& operator=(const nginx_server&) = delete;

    std::string h2_url(const std::string& path = "/") const { return "https://127.0.0.1:" + std::to_string(h2_port_) + path; }
    std::string h1_url(const std::string& path = "/") const { return "https://127.0.0.1:" + std::to_string(h1_port_) + path; }
    std::string h2c_url(const std::string& path = "/") const { return "http://127.0.0.1:" + std::to_string(h2c_port_) + path; }
    /// The CA that signed the server's certificate (PEM file), for tls_options::ca_file.
    std::string ca_file() const { return (dir_ / "ca.pem").string(); }

private:
    void write(const std::string& name, const std::string& content) { std::ofstream(dir_ / name) << content; }
    std::string read(const std::string& name) const {
        std::ifstream f(dir_ / name);
        return std::string(std::istreambuf_iterator<char>(f), {});
    }

    std::uint16_t h2_port_, h1_port_, h2c_port_;
    std::filesystem::path dir_;
    key_and_cert ca_;
    pid_t pid_ = -1;
};

} // namespace test

#endif
