#ifndef VPCDNS_CFUZZERDRIVER_H
#define VPCDNS_CFUZZERDRIVER_H
#include <stddef.h>
#include <stdint.h>

/// libFuzzer's driver (compiler-rt, LLVM 11+), linked in by `-sanitize=fuzzer`. Only
/// declared here: the fuzz executables call it from their own `main` (SwiftPM links every
/// executable with `--defsym main=<module>_main`, so libFuzzer's `main` is never used).
/// Never referenced in a normal build.
int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));

#endif
