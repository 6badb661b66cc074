// The consumer's own compiled Asio, as a service that builds with BOOST_ASIO_SEPARATE_COMPILATION
// has it. Linking it with libtokenflight must not define Asio's functions twice.
#include <boost/asio/impl/src.hpp>
