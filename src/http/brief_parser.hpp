// Private to tokenflight: a response parser that keeps only what a brief_response needs. It
// stores no header field and no body byte, so parsing a 2xx allocates nothing: the bytes stay in
// the connection's read buffer, which is reused from response to response.
#ifndef TOKENFLIGHT_SRC_HTTP_BRIEF_PARSER_HPP
#define TOKENFLIGHT_SRC_HTTP_BRIEF_PARSER_HPP

#include <tokenflight/http/header_syntax.hpp>
#include <tokenflight/http/prepared_request.hpp>
#include <tokenflight/www_authenticate.hpp>

#include <boost/beast/core/string.hpp>
#include <boost/beast/http/basic_parser.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/status.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace tokenflight::http::detail {

/// Keeps what a brief_response keeps of one response field (its status already set): the
/// challenges of a 401, Retry-After of a 429 or 503, DPoP-Nonce. For the HTTP/1.1 parser below
/// and the HTTP/2 transport alike.
inline void note_field(brief_response& res, field name, std::string_view name_string, std::string_view value) {
    constexpr std::size_t www_authenticate_cap = 1024;
    constexpr std::size_t retry_after_cap = 64;
    if (name == field::www_authenticate && res.status == 401) {
        auto& to = res.www_authenticate;
        if (to.size() < www_authenticate_cap) {
            if (!to.empty()) to += ", ";
            to.append(value.substr(0, www_authenticate_cap - std::min(www_authenticate_cap, to.size())));
        }
        for (const auto& c : parse_www_authenticate(value)) {
            if (boost::beast::iequals(c.error(), "insufficient_scope")) res.insufficient_scope = true;
            if (boost::beast::iequals(c.error(), "use_dpop_nonce")) res.use_dpop_nonce = true;
        }
    } else if (name == field::retry_after && (res.status == 429 || res.status == 503)) {
        res.retry_after.assign(value.substr(0, retry_after_cap));
    } else if (name == field::unknown && boost::beast::iequals(name_string, "dpop-nonce")) {
        if (value.size() <= max_dpop_nonce_size) res.dpop_nonce.assign(value);
    }
}

class brief_parser : public boost::beast::http::basic_parser<false> {
public:
    /// `head_budget` is charged with chunk extensions as they arrive (the exchange charges the
    /// head and trailer fields from head_size()).
    explicit brief_parser(std::size_t& head_budget) noexcept : head_budget_(head_budget) {}

    brief_response& get() noexcept { return res_; }
    brief_response release() noexcept { return std::move(res_); }
    /// Status line and fields (trailers included) as head_bytes() counts them for a response.
    std::size_t head_size() const noexcept { return head_size_; }
    /// The Transfer-Encoding fields, if any, are a clean coding list ending in chunked.
    bool clean_framing() const noexcept { return !has_te_ || (version_ >= 11 && te_.chunked_last_only()); }

private:
    using sv = boost::beast::string_view; // Beast's callbacks take boost::core::string_view

    void on_request_impl(boost::beast::http::verb, sv, sv, int, error_code& ec) override {
        ec = boost::beast::http::error::bad_method; // a response parser
    }
    void on_response_impl(int code, sv reason, int version, error_code&) override {
        res_ = {};
        res_.status = static_cast<unsigned>(code);
        version_ = version;
        // As head_bytes() counts a full response: an empty reason reads as the standard phrase.
        const auto counted_reason =
            reason.empty() ? boost::beast::http::obsolete_reason(boost::beast::http::int_to_status(res_.status)) : reason;
        head_size_ = 15 + counted_reason.size();
    }
    void on_field_impl(field name, sv name_string, sv value_sv, error_code&) override {
        const std::string_view value(value_sv.data(), value_sv.size());
        head_size_ += name_string.size() + value.size() + 4;
        if (name == field::transfer_encoding) {
            has_te_ = true;
            te_.add(value);
        } else {
            note_field(res_, name, std::string_view(name_string.data(), name_string.size()), value);
        }
    }
    void on_header_impl(error_code&) override {}
    void on_body_init_impl(const boost::optional<std::uint64_t>&, error_code&) override {}
    std::size_t on_body_impl(sv body, error_code&) override {
        res_.body_size += body.size();
        return body.size();
    }
    void on_chunk_header_impl(std::uint64_t, sv extensions, error_code& ec) override {
        // Extensions are head bytes: without this charge `1;ext=...` repeated forever would
        // stream past every limit (the body limit counts chunk data only).
        if (extensions.size() > head_budget_)
            ec = boost::beast::http::error::header_limit;
        else
            head_budget_ -= extensions.size();
    }
    std::size_t on_chunk_body_impl(std::uint64_t, sv body, error_code&) override {
        res_.body_size += body.size();
        return body.size();
    }
    void on_finish_impl(error_code&) override { res_.keep_alive = keep_alive(); }


    brief_response res_;
    std::size_t& head_budget_;
    std::size_t head_size_ = 0;
    int version_ = 11;
    bool has_te_ = false;
    chunked_coding_list te_;
};

} // namespace tokenflight::http::detail

#endif
