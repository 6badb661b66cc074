// Fuzzes what the shared token store reads back from Redis (src/fleet/record.hpp). The first
// byte picks the layer: even, the input is a sealed record given to open() (framing, sizes, the
// GCM tag: whatever Redis hands back); odd, the rest is a decrypted record given to
// parse_record(), which random bytes could never reach through the tag. A record that parses
// must hold what may become a header line, and must survive seal() and open() unchanged.
#include "fuzz_check.hpp"

#include "fleet/record.hpp"

#include <tokenflight/http/header_syntax.hpp>

#include <cstddef>
#include <cstdint>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace tokenflight;
    if (size == 0) return 0;
    static const auto key = fleet::record_key::derive("fuzz key material, 16 bytes+", "tokenflight:{h}:record");
    const std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
    if (data[0] % 2 == 0) {
        auto opened = fleet::open(input, key, "tokenflight:{h}:record");
        FUZZ_CHECK(!opened); // nothing but seal() makes a record that opens under this key
        return 0;
    }
    auto parsed = fleet::parse_record(input);
    if (!parsed) return 0;
    const auto& t = *parsed;
    FUZZ_CHECK(http::is_visible_ascii(t.value.reveal()));
    FUZZ_CHECK(http::is_token(t.type));
    FUZZ_CHECK(t.id == fleet::token_id(t.value.reveal()));
    if (!fleet::fits_in_record(t)) return 0;
    auto again = fleet::open(fleet::seal(t, key, "tokenflight:{h}:record"), key, "tokenflight:{h}:record");
    FUZZ_CHECK(again);
    FUZZ_CHECK(again->value.reveal() == t.value.reveal() && again->type == t.type && again->scope == t.scope &&
               again->expires_at == t.expires_at && again->id == t.id && again->issued_at == t.issued_at);
    FUZZ_CHECK(t.issued_at <= t.expires_at);
    return 0;
}
