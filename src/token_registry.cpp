#include <tokenflight/token_registry.hpp>

#include <algorithm>
#include <stdexcept>

namespace tokenflight {

namespace {
std::vector<std::string> scope_words(std::string_view scope) {
    std::vector<std::string> words;
    while (!scope.empty()) {
        const auto sp = scope.find(' ');
        if (sp != 0) words.emplace_back(scope.substr(0, sp));
        scope = sp == std::string_view::npos ? std::string_view() : scope.substr(sp + 1);
    }
    std::sort(words.begin(), words.end());
    words.erase(std::unique(words.begin(), words.end()), words.end());
    return words;
}
} // namespace

token_registry::token_registry(boost::asio::any_io_executor ex, credentials base, token_source_options options,
                               store_factory stores)
    : ex_(std::move(ex)), base_(std::move(base)), options_(std::move(options)), stores_(std::move(stores)) {
    if (options_.shared_store)
        throw std::invalid_argument("token_registry: one shared store per source; give a store_factory instead");
}

token_registry::~token_registry() { close(); }

token_source& token_registry::source(std::string_view scope,
                                     std::vector<std::pair<std::string, std::string>> extra_params) {
    key k{scope_words(scope), std::move(extra_params)};
    std::lock_guard lock(mutex_);
    auto& slot = sources_[k];
    if (!slot) {
        credentials c = base_;
        c.scope.clear();
        for (const auto& w : k.first) c.scope += (c.scope.empty() ? "" : " ") + w;
        c.extra_params = k.second;
        try {
            auto o = options_;
            if (stores_) o.shared_store = stores_(c);
            slot = std::make_unique<token_source>(ex_, std::move(c), std::move(o));
        } catch (...) {
            sources_.erase(k);
            throw;
        }
    }
    return *slot;
}

std::size_t token_registry::size() const {
    std::lock_guard lock(mutex_);
    return sources_.size();
}

void token_registry::close() {
    std::lock_guard lock(mutex_);
    for (auto& [k, s] : sources_) s->close();
}

} // namespace tokenflight
