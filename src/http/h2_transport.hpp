// Private to tokenflight: the pool's HTTP/2 transport (issue 19). An origin whose requests go
// over HTTP/2 (pool_options::version) has a few h2_connections instead of one connection per
// request in flight; each carries up to its stream limit of requests, on one socket, driven by
// an http2::client_session on the connection's strand. See docs/design-notes.md, "HTTP/2".
#ifndef TOKENFLIGHT_SRC_HTTP_H2_TRANSPORT_HPP
#define TOKENFLIGHT_SRC_HTTP_H2_TRANSPORT_HPP

#include "pool_impl.hpp"

#include <memory>

namespace tokenflight::http::detail {

/// The transport's entry points for the pool (friends of pool_impl, as is the rest of it).
struct h2_transport {
    /// Under p.mutex: hands `op` to a connection of `p` with a free stream, to a new connection
    /// (returned in `spawned`, to be started once the lock is released), or to the origin's queue.
    static void place(pool_impl& pool, origin_pool& p, exchange_op& op, std::shared_ptr<h2_connection>& spawned);
    /// Connects a connection made by place(); its requests go out once it is ready.
    static void start(std::shared_ptr<h2_connection> c);
    /// Under p.mutex, for pool_impl::cancel: true when `op` was taken back before it was sent
    /// (op.ec set, the caller completes it); false when its connection's strand cancels it.
    static bool cancel(origin_pool& p, exchange_op& op);
    /// Under p.mutex, for pool_impl::close: no connection takes new streams; each closes once its
    /// streams are done.
    static void close(origin_pool& p);
};

} // namespace tokenflight::http::detail

#endif
