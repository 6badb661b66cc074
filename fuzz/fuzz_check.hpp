// Shared by the fuzz targets: invariant checks that stop the fuzzer with a readable message.
#ifndef TOKENFLIGHT_FUZZ_CHECK_HPP
#define TOKENFLIGHT_FUZZ_CHECK_HPP

#include <cstdio>

// A broken invariant is a finding: print it and trap, so that libFuzzer saves the input.
#define FUZZ_CHECK(cond)                                                                          \
    do {                                                                                          \
        if (!(cond)) {                                                                            \
            std::fprintf(stderr, "%s:%d: fuzz invariant broken: %s\n", __FILE__, __LINE__, #cond); \
            std::fflush(stderr);                                                                  \
            __builtin_trap();                                                                     \
        }                                                                                         \
    } while (0)

#endif
