/* Counts every heap allocation of a process (malloc, calloc, realloc, aligned_alloc, memalign,
 * posix_memalign: operator new and Asio's recycling allocator end in one of them) and prints the
 * total to stderr at exit, as "ALLOCATIONS <n>". Preloaded by benchmarks/instructions.sh:
 *   LD_PRELOAD=build/count_allocations.so tokenflight-load ...
 * Two runs, of N and 2N requests, give the allocations per request at steady state. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <stdatomic.h>
#include <errno.h>
extern void* __libc_malloc(size_t);
extern void* __libc_memalign(size_t, size_t);
extern void* __libc_calloc(size_t, size_t);
extern void* __libc_realloc(void*, size_t);
static atomic_ulong count;
void* malloc(size_t n) { atomic_fetch_add(&count, 1); return __libc_malloc(n); }
void* calloc(size_t a, size_t b) { atomic_fetch_add(&count, 1); return __libc_calloc(a, b); }
void* realloc(void* p, size_t n) { atomic_fetch_add(&count, 1); return __libc_realloc(p, n); }
void* aligned_alloc(size_t a, size_t n) { atomic_fetch_add(&count, 1); return __libc_memalign(a, n); }
void* memalign(size_t a, size_t n) { atomic_fetch_add(&count, 1); return __libc_memalign(a, n); }
int posix_memalign(void** p, size_t a, size_t n) { atomic_fetch_add(&count, 1); *p = __libc_memalign(a, n); return *p ? 0 : ENOMEM; }
__attribute__((destructor)) static void report(void) { fprintf(stderr, "ALLOCATIONS %lu\n", (unsigned long)count); }
