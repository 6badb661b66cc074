// Shared by the fuzz targets: invariant checks that stop the fuzzer with a readable message.
#ifndef TOKENFLIGHT_FUZZ_CHECK_HPP
#define TOKENFLIGHT_FUZZ_CHECK_HPP

#include <cstdio>
#include <string_view>

// A broken invariant is a finding: print it and trap, so that libFuzzer saves the input.
#define FUZZ_CHECK(cond)                                                                          \
    do {                                                                                          \
        if (!(cond)) {                                                                            \
            std::fprintf(stderr, "%s:%d: fuzz invariant broken: %s\n", __FILE__, __LINE__, #cond); \
            std::fflush(stderr);                                                                  \
            __builtin_trap();                                                                     \
        }                                                                                         \
    } while (0)

namespace fuzz {
// Inputs of the targets that parse a response body: "SSS <body>" (three ASCII digits, a space)
// gives the HTTP status and strips it from `body`; any other input is a 200 with the whole input.
inline unsigned take_status(std::string_view& body) {
    if (body.size() >= 4 && body[3] == ' ' && body[0] >= '0' && body[0] <= '9' && body[1] >= '0' &&
        body[1] <= '9' && body[2] >= '0' && body[2] <= '9') {
        const auto status = static_cast<unsigned>((body[0] - '0') * 100 + (body[1] - '0') * 10 + (body[2] - '0'));
        body.remove_prefix(4);
        return status;
    }
    return 200;
}
} // namespace fuzz

#endif
