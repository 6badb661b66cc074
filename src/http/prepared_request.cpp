#include "prepared.hpp"

#include <tokenflight/http/header_syntax.hpp>

#include <boost/beast/core/string.hpp>

#include <stdexcept>


namespace tokenflight::http {

void detail::set_default_fields(request& req, const origin& to, std::string_view user_agent) {
    if (req.find(field::host) == req.end()) req.set(field::host, to.authority());
    if (req.find(field::user_agent) == req.end() && !user_agent.empty()) req.set(field::user_agent, user_agent);
}

namespace detail {

namespace {
// The one place an Authorization line becomes bytes: the same checks serialize_request_head makes.
error_code append_authorization(std::string& line, std::string_view scheme, std::string_view token) {
    if ((!scheme.empty() && !is_token(scheme)) || !is_field_value(token) || token.empty())
        return errc::invalid_header_value;
    line += "Authorization: ";
    if (!scheme.empty()) {
        line += scheme;
        line += ' ';
    }
    line += token;
    line += "\r\n";
    return {};
}
} // namespace

boost::system::result<std::shared_ptr<const authorization_line>>
authorization_with_proof(std::string_view scheme, std::string_view token, std::string_view proof) {
    if (!is_field_value(proof) || proof.empty()) return error_code(errc::invalid_header_value);
    auto built = std::make_shared<authorization_line>();
    built->scheme = scheme;
    built->line.reserve(27 + scheme.size() + token.size() + proof.size());
    if (auto ec = append_authorization(built->line, scheme, token)) return ec;
    built->line += "DPoP: ";
    built->line += proof;
    built->line += "\r\n";
    return std::shared_ptr<const authorization_line>(std::move(built));
}

boost::system::result<std::shared_ptr<const authorization_line>>
prepared_state::authorization_for(std::uint64_t source, std::uint64_t generation, std::string_view scheme,
                                  std::string_view token) {
    {
        std::lock_guard lock(authorization_mutex);
        if (authorization && authorization->is(source, generation, scheme)) return authorization;
    }
    auto built = std::make_shared<authorization_line>();
    built->source = source;
    built->generation = generation;
    built->scheme = scheme;
    built->line.reserve(17 + scheme.size() + token.size());
    if (auto ec = append_authorization(built->line, scheme, token)) return ec;
    authorization_builds.fetch_add(1, std::memory_order_relaxed);
    std::shared_ptr<const authorization_line> out = std::move(built);
    // A newer generation of the same source wins: a late sender with an older token does not
    // evict it. A line of another source or scheme (the request sent through two clients) is
    // replaced.
    std::lock_guard lock(authorization_mutex);
    const auto& held = authorization;
    if (!held || held->source != source || held->scheme != scheme || held->generation < generation) authorization = out;
    return out;
}

wire_request prepared_state::wire(const authorization_line* auth) const noexcept {
    wire_request w;
    w.parts[0] = boost::asio::buffer(head);
    if (auth) w.parts[1] = boost::asio::buffer(auth->line);
    w.parts[2] = boost::asio::buffer("\r\n", 2);
    w.parts[3] = boost::asio::buffer(body);
    w.method = method;
    w.keep_alive = keep_alive;
    return w;
}

} // namespace detail

const location& prepared_request::where() const noexcept { return state_->where; }
verb prepared_request::method() const noexcept { return state_->method; }
std::string_view prepared_request::head_without_authorization() const noexcept {
    return state_ ? std::string_view(state_->head) : std::string_view();
}
std::string_view prepared_request::body() const noexcept { return state_ ? std::string_view(state_->body) : std::string_view(); }
std::uint64_t prepared_request::authorization_builds() const noexcept {
    return state_ ? state_->authorization_builds.load(std::memory_order_relaxed) : 0;
}

boost::system::result<prepared_request> make_prepared_request(verb method, std::string_view url,
                                                              std::vector<std::pair<std::string, std::string>> headers,
                                                              std::string body, std::string_view user_agent) {
    auto loc = parse_url(url);
    if (!loc) return loc.error();
    request req{method, loc->target, 11};
    bool has_authorization = false;
    for (auto& [name, value] : headers) {
        if (!is_token(name)) return error_code(errc::invalid_header_name);
        // The framing is the body's: a caller's Content-Length or Transfer-Encoding could
        // disagree with it and desynchronise the connection for the next request.
        if (boost::beast::iequals(name, "content-length") || boost::beast::iequals(name, "transfer-encoding"))
            return error_code(errc::invalid_header_name);
        has_authorization = has_authorization || boost::beast::iequals(name, "authorization");
        req.insert(name, value);
    }
    detail::set_default_fields(req, loc->origin, user_agent);
    req.body() = std::move(body);
    try {
        req.prepare_payload();
    } catch (const std::invalid_argument&) { // a body on TRACE
        return error_code(errc::invalid_method);
    }
    auto s = std::make_shared<detail::prepared_state>();
    if (auto ec = serialize_request_head(req, s->head)) return ec;
    s->head.resize(s->head.size() - 2); // the blank line comes after Authorization
    s->where = std::move(*loc);
    s->method = method;
    s->keep_alive = req.keep_alive();
    s->has_authorization = has_authorization;
    s->body = std::move(req.body());
    return detail::prepared_access::make(std::move(s));
}

} // namespace tokenflight::http
