// Software prefetch for weights read a few cache lines at a time with a
// stride the hardware prefetchers do not follow (one block of a row block,
// then the same block of the next; the columns of a dense block row ahead).
#pragma once

#include <cstddef>
#include <cstdint>

namespace sparsecpu {
namespace {

// Fetches into L1 the lines of the `bytes` that start `ahead` bytes past p. A
// prefetch never faults, so the span may lie past the end of p's buffer (the
// address is formed as an integer, not as a pointer past the end).
inline void prefetch_ahead(const void* p, int64_t ahead, size_t bytes) {
  const uintptr_t start = reinterpret_cast<uintptr_t>(p) + static_cast<uintptr_t>(ahead);
  for (uintptr_t line = start & ~uintptr_t{63}; line < start + bytes; line += 64)
    __builtin_prefetch(reinterpret_cast<const void*>(line));
}

}  // namespace
}  // namespace sparsecpu
