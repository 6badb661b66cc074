// Private to tokenflight: memory for request objects, reused per thread.
#ifndef TOKENFLIGHT_SRC_RECYCLER_HPP
#define TOKENFLIGHT_SRC_RECYCLER_HPP

#include <cstddef>
#include <new>

namespace tokenflight::detail {

/// Blocks for objects of type T, from a free list per thread (capped), or from operator new.
///
/// Not Asio's recycling allocator: its per-thread cache has two slots per purpose, shared with
/// the completion handlers and executor operations of the same request, and blocks of different
/// sizes evict each other there, so a request object missed it often enough to cost an
/// allocation per request. A list of blocks of one size cannot be evicted by other sizes. A block
/// freed on another thread joins that thread's list.
template <class T>
class recycler {
public:
    static void* allocate() {
        free_list& l = list();
        if (node* n = l.head) {
            l.head = n->next;
            --l.count;
            return n;
        }
        return ::operator new(block_size);
    }
    static void deallocate(void* p) noexcept {
        free_list& l = list();
        if (l.count == cap) return ::operator delete(p);
        auto* n = static_cast<node*>(p);
        n->next = l.head;
        l.head = n;
        ++l.count;
    }

private:
    struct node {
        node* next;
    };
    static constexpr std::size_t block_size = sizeof(T) < sizeof(node) ? sizeof(node) : sizeof(T);
    static constexpr std::size_t cap = 1024; // requests in flight per thread that stay cached
    static_assert(alignof(T) <= __STDCPP_DEFAULT_NEW_ALIGNMENT__);

    struct free_list {
        node* head = nullptr;
        std::size_t count = 0;
        ~free_list() {
            while (node* n = head) {
                head = n->next;
                ::operator delete(n);
            }
        }
    };
    static free_list& list() noexcept {
        thread_local free_list l;
        return l;
    }
};

} // namespace tokenflight::detail

#endif
