#include <tokenflight/http/url.hpp>
#include <tokenflight/error.hpp>

#include <boost/asio/ip/address.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/url_view.hpp>

#include <algorithm>

namespace tokenflight::http {

std::string origin::to_string() const {
    const bool v6 = host.find(':') != std::string::npos;
    return std::string(tls ? "https://" : "http://") + (v6 ? "[" : "") + host + (v6 ? "]" : "") + ':' +
           std::to_string(port);
}

std::string origin::authority() const {
    std::string out = host.find(':') != std::string::npos ? '[' + host + ']' : host;
    if (port != (tls ? 443 : 80)) out += ':' + std::to_string(port);
    return out;
}

boost::system::result<location> parse_url(std::string_view text) {
    auto parsed = boost::urls::parse_absolute_uri(text);
    if (!parsed) return error_code(errc::invalid_url);
    const boost::urls::url_view& u = *parsed;
    location loc;
    if (u.scheme_id() == boost::urls::scheme::https)
        loc.origin.tls = true;
    else if (u.scheme_id() != boost::urls::scheme::http)
        return error_code(errc::unsupported_scheme);
    // Credentials in the URL would end up in logs; the token endpoint gets them another way.
    if (u.has_userinfo() || u.host_type() == boost::urls::host_type::none || u.host_address().empty())
        return error_code(errc::invalid_url);
    loc.origin.host = u.host_address();
    if (u.has_port()) {
        if (u.port_number() == 0) return error_code(errc::invalid_url);
        loc.origin.port = u.port_number();
    } else {
        loc.origin.port = loc.origin.tls ? 443 : 80;
    }
    loc.target = u.encoded_target();
    if (loc.target.empty() || loc.target.front() != '/') loc.target = "/" + loc.target;
    return loc;
}

std::string redact_url(std::string_view url) {
    std::string out;
    auto u = boost::urls::parse_uri_reference(url);
    // A password with a raw '/', '?' or '#' still parses, wrongly split (its tail becomes the
    // path or query, its head a host and port): any '@' outside the parsed user info means the
    // parts cannot be trusted.
    const auto ats = static_cast<std::size_t>(std::count(url.begin(), url.end(), '@'));
    if (u && ats == (u->has_userinfo() ? 1u : 0u)) {
        // Parsed: exactly the user info, query and fragment go.
        if (u->has_scheme()) {
            out.append(u->scheme());
            out += ':';
        }
        if (u->has_authority()) {
            out += "//";
            if (u->has_userinfo()) out += "***@";
            out.append(u->encoded_host_and_port());
        }
        out.append(u->encoded_path());
        if (u->has_query() || u->has_fragment()) out += "?***";
    } else {
        // Not a URL, so no telling where its parts are: everything up to the last '@' may be
        // user info (a raw '/', '?' or '#' in a password breaks parsing), and everything from
        // the first '?' or '#' after it may be a query.
        std::string_view rest = url;
        const auto scheme_end = rest.find("://");
        if (scheme_end != std::string_view::npos) {
            out.append(rest.substr(0, scheme_end + 3));
            rest.remove_prefix(scheme_end + 3);
        }
        if (const auto at = rest.rfind('@'); at != std::string_view::npos) {
            out += "***";
            rest.remove_prefix(at);
        }
        const auto cut = rest.find_first_of("?#");
        out.append(rest.substr(0, cut));
        if (cut != std::string_view::npos) out += "?***";
    }
    strip_controls(out);
    return out;
}

bool is_loopback_host(std::string_view host) noexcept {
    // Not "*.localhost": the resolver may send such names to DNS and so off the machine.
    if (host == "localhost") return true;
    error_code ec;
    auto addr = boost::asio::ip::make_address(host, ec);
    return !ec && addr.is_loopback();
}

bool is_insecure(const origin& o, bool allow_insecure_http) {
    if (o.tls || allow_insecure_http) return false;
    // is_loopback_host parses an address; the requests of a client ask about one host again and
    // again.
    thread_local std::string last_host;
    thread_local bool last_loopback = false;
    if (o.host != last_host) {
        last_loopback = is_loopback_host(o.host);
        last_host = o.host;
    }
    return !last_loopback;
}

} // namespace tokenflight::http
