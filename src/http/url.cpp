#include <tokenflight/http/url.hpp>
#include <tokenflight/error.hpp>

#include <boost/asio/ip/address.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/url_view.hpp>

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
    const auto cut = url.find_first_of("?#");
    std::string_view kept = url.substr(0, cut);
    const auto scheme_end = kept.find("://");
    const std::size_t authority = scheme_end == std::string_view::npos ? 0 : scheme_end + 3;
    const auto path = kept.find('/', authority);
    const auto at = kept.substr(0, path).rfind('@');
    if (at != std::string_view::npos && at >= authority) {
        out.append(kept.substr(0, authority));
        out += "***";
        out.append(kept.substr(at));
    } else {
        out.append(kept);
    }
    if (cut != std::string_view::npos) out += "?***";
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

} // namespace tokenflight::http
