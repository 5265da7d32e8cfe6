// See include/AllocationCounter.h. glibc exports its allocator under `__libc_*` names, so the
// wrappers need no dlsym (which itself allocates and would recurse).
#include "AllocationCounter.h"
#include <errno.h>
#include <stddef.h>
#include <execinfo.h>
#include <stdlib.h>
#include <unistd.h>

extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t count, size_t size);
extern void *__libc_realloc(void *pointer, size_t size);
extern void *__libc_memalign(size_t alignment, size_t size);

static __thread int counting;
static __thread uint64_t counted;

static __thread int tracing, inside;
/* Threads that joined the shared count (a datapath thread, from its first query on). */
static __thread int sharing;
static uint64_t shared_count;

static inline void note(void) {
    if (sharing) __atomic_fetch_add(&shared_count, 1, __ATOMIC_RELAXED);
    if (counting) {
        counted++;
        if (tracing && !inside) {
            inside = 1;
            void *frames[24];
            int n = backtrace(frames, 24);
            write(2, "ALLOC>>>\n", 9);
            backtrace_symbols_fd(frames, n, 2);
            inside = 0;
        }
    }
}

void vpcdns_allocations_trace(int on) {
    // The first backtrace() loads libgcc's unwinder, which allocates: done here, not counted.
    void *frames[4];
    backtrace(frames, 4);
    tracing = on;
}

void *malloc(size_t size) {
    note();
    return __libc_malloc(size);
}

void *calloc(size_t count, size_t size) {
    note();
    return __libc_calloc(count, size);
}

void *realloc(void *pointer, size_t size) {
    note();
    return __libc_realloc(pointer, size);
}

void *memalign(size_t alignment, size_t size) {
    note();
    return __libc_memalign(alignment, size);
}

void *aligned_alloc(size_t alignment, size_t size) {
    note();
    return __libc_memalign(alignment, size);
}

int posix_memalign(void **out, size_t alignment, size_t size) {
    note();
    // POSIX: a power of two and a multiple of sizeof(void *).
    if (alignment == 0 || (alignment & (alignment - 1)) != 0 || alignment % sizeof(void *) != 0) return EINVAL;
    void *p = __libc_memalign(alignment, size);
    if (p == NULL) return ENOMEM;
    *out = p;
    return 0;
}

void vpcdns_allocations_start(void) {
    counted = 0;
    counting = 1;
}

uint64_t vpcdns_allocations_stop(void) {
    counting = 0;
    return counted;
}

void vpcdns_allocations_resume(uint64_t already) {
    counted = already;
    counting = 1;
}

int vpcdns_allocations_hooked(void) {
    vpcdns_allocations_start();
    void *volatile p = malloc(64);
    free(p);
    return vpcdns_allocations_stop() == 1;
}

void vpcdns_allocations_share(void) {
    sharing = 1;
}
uint64_t vpcdns_allocations_shared(void) {
    return __atomic_load_n(&shared_count, __ATOMIC_RELAXED);
}
