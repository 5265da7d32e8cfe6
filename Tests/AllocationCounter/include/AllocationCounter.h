#ifndef VPCDNS_ALLOCATION_COUNTER_H
#define VPCDNS_ALLOCATION_COUNTER_H
#include <stdint.h>

/// Counts heap allocations (malloc, calloc, realloc, posix_memalign, aligned_alloc, memalign)
/// made by the calling thread between start and stop. Linked into the test binary only: it
/// defines those functions in the executable, which takes precedence over glibc's for every
/// library in the process, and forwards each to glibc's own (`__libc_malloc`, ...), so nothing
/// else changes. Per thread, so NIO's threads and the test runner's others add no noise.
void vpcdns_allocations_start(void);
/// Stops counting on this thread and returns the allocations counted since start.
uint64_t vpcdns_allocations_stop(void);
/// Counts on from `counted` (after a pause in which the test itself allocated).
void vpcdns_allocations_resume(uint64_t counted);
/// While on (and counting), each allocation counted on this thread writes a backtrace to stderr
/// (`backtrace_symbols_fd`: no allocation of its own); for finding where one comes from.
void vpcdns_allocations_trace(int on);
/// True when the hook is in place (an allocation between start and stop is seen).
int vpcdns_allocations_hooked(void);

/// From now on, every allocation on the calling thread (whatever it runs) is also added to one
/// count shared by all threads that called this: for a thread the test does not run itself,
/// such as a UDP datapath thread, joined from inside its first query.
void vpcdns_allocations_share(void);
/// The shared count so far.
uint64_t vpcdns_allocations_shared(void);

#endif
