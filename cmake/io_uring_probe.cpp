// Configure-time probe for TOKENFLIGHT_IO_URING: can this kernel and sandbox set up an io_uring
// and complete an operation on it? Exit 0 if so; otherwise print why and exit 1.
#include <liburing.h>

#include <cstdio>
#include <cstring>

int main() {
    io_uring ring;
    if (int r = io_uring_queue_init(8, &ring, 0); r < 0) {
        std::printf("io_uring_queue_init: %s\n", std::strerror(-r));
        return 1;
    }
    io_uring_prep_nop(io_uring_get_sqe(&ring));
    io_uring_cqe* cqe = nullptr;
    int r = io_uring_submit(&ring);
    if (r >= 0) r = io_uring_wait_cqe(&ring, &cqe);
    if (r < 0) std::printf("io_uring submit/wait: %s\n", std::strerror(-r));
    io_uring_queue_exit(&ring);
    return r < 0 ? 1 : 0;
}
