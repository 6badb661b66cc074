// Fuzzes tokenflight::redis::reply_reader: whatever answers on a Redis port. The input is fed in
// two pieces (the first byte says where it splits) to a reader with a 4 KiB limit; every reply
// read must stay within the limit, and a failed reader must stay failed.
#include "fuzz_check.hpp"

#include "redis/resp.hpp"

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace {

// Every byte of a reply's text, however deeply it is nested.
std::size_t text_bytes(const tokenflight::redis::reply& r) {
    std::size_t n = r.text.size();
    for (const auto& e : r.elements) n += text_bytes(e);
    return n;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    constexpr std::size_t limit = 4096;
    const std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
    const std::size_t split = std::min<std::size_t>(data[0], input.size());
    tokenflight::redis::reply_reader reader(limit);
    bool failed = false;
    for (const auto piece : {input.substr(0, split), input.substr(split)}) {
        if (reader.feed(piece)) {
            failed = true;
            break;
        }
        for (;;) {
            auto next = reader.next();
            if (!next) {
                failed = true;
                break;
            }
            if (!*next) break;
            FUZZ_CHECK(text_bytes(**next) <= limit);
        }
        if (failed) break;
    }
    if (failed) {
        FUZZ_CHECK(!reader.next().has_value());
        FUZZ_CHECK(reader.feed("+OK\r\n"));
    }
    return 0;
}
