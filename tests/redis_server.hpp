// A real redis-server (Debian's) for a test: started on a free 127.0.0.1 port with no
// persistence, stopped (SIGTERM, then SIGKILL) on destruction. Fails the test with a clear
// message when redis-server is not installed or does not come up within 10 s.
#ifndef TOKENFLIGHT_TESTS_REDIS_SERVER_HPP
#define TOKENFLIGHT_TESTS_REDIS_SERVER_HPP

#include <doctest/doctest.h>

#include "ports.hpp"
#include "temp_file.hpp"
#include "tls_certs.hpp"

#include <chrono>
#include <csignal>
#include <string>
#include <thread>
#include <vector>

#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

namespace test {

class redis_server {
public:
    /// How clients reach it.
    enum class transport { tcp, tls };

    /// `extra`: more configuration as redis-server arguments, e.g. {"--requirepass", "pw"};
    /// with transport::tls they must name the certificate files (--tls-cert-file, ...), and the
    /// server listens for TLS only.
    explicit redis_server(std::vector<std::string> extra = {}, transport t = transport::tcp)
        : port_(test::free_port()), tls_(t == transport::tls) {
        REQUIRE_MESSAGE(::access("/usr/bin/redis-server", X_OK) == 0,
                        "redis-server is not installed (apt-get install redis-server)");
        std::vector<std::string> args{"redis-server", "--port",   std::to_string(port_), "--bind", "127.0.0.1",
                                      "--save",       "",         "--appendonly",        "no",     "--daemonize",
                                      "no",           "--loglevel", "warning",       "--logfile", "/dev/null"};
        if (tls_) {
            args[2] = "0"; // no plain port
            args.insert(args.end(), {"--tls-port", std::to_string(port_)});
        }
        args.insert(args.end(), extra.begin(), extra.end());
        args_ = std::move(args);
        start();
    }
    ~redis_server() { stop(); }

    /// Starts it (again, after stop(): on the same port, empty).
    void start() {
        REQUIRE(pid_ <= 0);
        // Built before the fork: the child of a threaded process may only exec.
        std::vector<char*> argv;
        for (auto& a : args_) argv.push_back(a.data());
        argv.push_back(nullptr);
        pid_ = ::fork();
        REQUIRE(pid_ >= 0);
        if (pid_ == 0) {
            ::prctl(PR_SET_PDEATHSIG, SIGKILL); // a test killed (ctest's timeout) takes its server along
            ::close_range(3, ~0U, 0);           // the test's sockets are not close-on-exec
            ::execv("/usr/bin/redis-server", argv.data());
            ::_exit(127);
        }
        for (int i = 0; i < 1000; ++i) { // 10 s at most
            // A server that died (its port taken meanwhile) is not waited for, nor is whatever
            // took the port mistaken for it.
            if (::waitpid(pid_, nullptr, WNOHANG) == pid_) {
                pid_ = -1;
                FAIL("redis-server exited at start (port " << port_ << " taken?)");
            }
            if (accepts(port_)) return;
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        stop();
        FAIL("redis-server did not come up within 10 s");
    }
    redis_server(const redis_server&) = delete;
    redis_server& operator=(const redis_server&) = delete;

    std::uint16_t port() const noexcept { return port_; }
    std::string url(const std::string& userinfo = "", int db = 0) const {
        return std::string(tls_ ? "rediss://" : "redis://") + (userinfo.empty() ? "" : userinfo + "@") + "127.0.0.1:" + std::to_string(port_) + "/" +
               std::to_string(db);
    }

    /// Freezes it (SIGSTOP): connections stay open and nothing answers, as a server stalled by
    /// a fork or swapping would. resume() (SIGCONT) thaws it; stop() thaws it first.
    void pause() { ::kill(pid_, SIGSTOP); }
    void resume() { ::kill(pid_, SIGCONT); }

    void stop() {
        if (pid_ <= 0) return;
        ::kill(pid_, SIGCONT);
        ::kill(pid_, SIGTERM);
        for (int i = 0; i < 500; ++i) { // 5 s, then SIGKILL
            if (::waitpid(pid_, nullptr, WNOHANG) == pid_) {
                pid_ = -1;
                return;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, nullptr, 0);
        pid_ = -1;
    }

private:
    std::uint16_t port_;
    bool tls_;
    std::vector<std::string> args_;
    pid_t pid_ = -1;
};

/// A TLS-only redis-server with a certificate for IP 127.0.0.1, signed by a CA made for it.
struct tls_redis_server {
    key_and_cert ca = make_cert("tokenflight redis CA", "", nullptr);
    key_and_cert served = make_cert("redis", "IP:127.0.0.1", &ca);
    temp_file cert{served.cert_pem, "redis-cert"}, key{served.key_pem, "redis-key"}, ca_file{ca.cert_pem, "redis-ca"};
    redis_server server{{"--tls-cert-file", cert.path(), "--tls-key-file", key.path(), "--tls-ca-cert-file",
                         ca_file.path(), "--tls-auth-clients", "no"},
                        redis_server::transport::tls};
};

} // namespace test

#endif
