// Asio, Asio SSL and Beast compiled once, for the project's own programs only: this file is part
// of tokenflight_own, the twin of the library that tests, examples, tools, benchmarks and fuzzers
// link when TOKENFLIGHT_SEPARATE_COMPILATION is on (BOOST_ASIO_SEPARATE_COMPILATION and
// BOOST_BEAST_SEPARATE_COMPILATION are public definitions of that twin). The installed library
// never contains it. This is the slowest file to build; nothing else belongs in it.
#include <boost/asio/impl/src.hpp>
#include <boost/asio/ssl/impl/src.hpp>
#include <boost/beast/src.hpp>
