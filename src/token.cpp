#include <tokenflight/token.hpp>

#include <ostream>

namespace tokenflight {

std::string access_token::redacted() const {
    if (!d_) return "<none>";
    const auto v = value();
    const std::size_t shown = v.size() > 24 ? 6 : 0; // short tokens: show nothing at all
    return std::string(v.substr(0, shown)) + "...(" + std::to_string(v.size()) + " chars)";
}

std::ostream& operator<<(std::ostream& os, const access_token& t) {
    if (!t) return os << "access_token{}";
    return os << "access_token{" << t.type() << ' ' << t.redacted() << ", generation " << t.generation() << '}';
}

} // namespace tokenflight
