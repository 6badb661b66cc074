// Private to tokenflight: how its layers reach each other's shared state without a public
// accessor (the public classes befriend detail::access, as Boost.MySQL's do).
#ifndef TOKENFLIGHT_SRC_ACCESS_HPP
#define TOKENFLIGHT_SRC_ACCESS_HPP

#include <tokenflight/http/client_identity.hpp>
#include <tokenflight/http/connection_pool.hpp>
#include <tokenflight/token.hpp>
#include <tokenflight/token_source.hpp>

#include <memory>

struct ssl_st; // OpenSSL's SSL

namespace tokenflight::detail {

struct access {
    static const std::shared_ptr<token_source_impl>& impl(const token_source& s) noexcept { return s.impl_; }
    static const std::shared_ptr<http::detail::pool_impl>& impl(const http::connection_pool& p) noexcept {
        return p.impl_;
    }
    static const access_token::data& data(const access_token& t) noexcept { return *t.d_; }
    /// Makes `ssl` (a connection not yet handshaken) present `id`'s certificate, chain and key;
    /// nothing for an empty identity. False when OpenSSL refuses.
    static bool present(const http::client_identity& id, ssl_st* ssl) noexcept;
    /// Identifies an identity for pooling: the same for copies, null for an empty one.
    static const void* key(const http::client_identity& id) noexcept { return id.impl_.get(); }
};

} // namespace tokenflight::detail

#endif
