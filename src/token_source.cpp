#include <tokenflight/token_source.hpp>

#include "token_source_impl.hpp"

namespace tokenflight {

token_source::token_source(executor_type ex, credentials creds, token_source_options options)
    : impl_(std::make_shared<detail::token_source_impl>(std::move(ex), std::move(creds), std::move(options))) {}

token_source::~token_source() { impl_->close(); }

void token_source::start(const std::shared_ptr<detail::token_source_impl>& impl, handler_type handler,
                         diagnostics* diag, std::optional<std::uint64_t> after) {
    impl->start(std::move(handler), diag, after);
}

access_token token_source::try_get_token() { return impl_->try_get(); }
void token_source::close() { impl_->close(); }
token_source_stats token_source::stats() const { return impl_->stats(); }
token_source::executor_type token_source::get_executor() const noexcept { return impl_->executor(); }
diagnostics token_source::last_diagnostics() const { return impl_->last_diagnostics(); }

} // namespace tokenflight
