#ifndef VPCDNS_CMALLOC_SHIM_H
#define VPCDNS_CMALLOC_SHIM_H
/* glibc's heap tuning (mallopt, malloc_trim): not in Swift's Glibc module. */
#include <malloc.h>
#endif
