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

// A 2:4 row's `count` weights and their position bytes in the next block of
// rows, `ahead` entries away (the 2:4 kernels interleave rows in blocks).
template <class T>
inline void prefetch_next_row_block(const T* values, const uint8_t* positions, int64_t ahead, int64_t count) {
  prefetch_ahead(values, ahead * static_cast<int64_t>(sizeof(T)), static_cast<size_t>(count) * sizeof(T));
  prefetch_ahead(positions, ahead, static_cast<size_t>(count));
}

}  // namespace
}  // namespace sparsecpu
