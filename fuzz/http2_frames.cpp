// Fuzzes the HTTP/2 client session's frame input (src/http2/session.hpp): whatever a server
// sends after three requests went out. The first byte sets the size of the pieces the rest is
// fed in (as reads of a socket would cut it). Every stream must end at most once, with a
// response within the limits or a typed error; the session must never take more than it
// submitted, and a connection error must leave it failed.
#include "fuzz_check.hpp"

#include "http2/session.hpp"

#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace tokenflight;
    if (size == 0) return 0;
    http2::limits l;
    l.max_header_list = 2048;
    l.max_body = 64 * 1024;
    l.max_continuations = 4;
    http2::client_session s(l);
    const std::pair<std::string_view, std::string_view> fields[] = {{"Accept", "*/*"}, {"authorization", "Bearer t"}};
    http2::request_view get{.authority = "api.test", .path = "/a", .headers = fields};
    http2::request_view post{.method = "POST", .authority = "api.test", .path = "/b", .body = "payload"};
    http2::request_view small{.authority = "api.test", .path = "/c", .body_limit = 100, .keep_body = false};
    std::set<std::int32_t> open;
    for (const auto* r : {&get, &post, &small}) {
        auto id = s.submit(*r);
        FUZZ_CHECK(id);
        open.insert(*id);
    }
    std::string out;
    s.take_output(out);
    const std::size_t piece = 1 + data[0] % 64;
    std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
    std::set<std::int32_t> done;
    while (!input.empty()) {
        const auto n = std::min(piece, input.size());
        const auto ec = s.receive(input.substr(0, n));
        input.remove_prefix(n);
        out.clear();
        s.take_output(out);
        for (auto& c : s.take_completed()) {
            FUZZ_CHECK(open.count(c.stream_id) == 1);     // one of ours
            FUZZ_CHECK(done.insert(c.stream_id).second); // ended once
            if (c.error) continue;
            FUZZ_CHECK(c.res.status >= 200 && c.res.status <= 999);
            std::size_t header_bytes = 0;
            for (const auto& [name, value] : c.res.headers) header_bytes += name.size() + value.size() + 32;
            FUZZ_CHECK(header_bytes <= l.max_header_list);
            FUZZ_CHECK(c.res.body_size <= (c.stream_id == 5 ? 100 : l.max_body));
            FUZZ_CHECK(c.res.body.size() == (c.stream_id == 5 ? 0 : c.res.body_size));
        }
        if (ec) {
            FUZZ_CHECK(s.failed());
            FUZZ_CHECK(s.open_streams() == 0); // every stream was ended with the connection
            break;
        }
    }
    FUZZ_CHECK(s.open_streams() + done.size() == open.size());
    return 0;
}
