// Software prefetch for weights read a few cache lines at a time with a
// stride the hardware prefetchers do not follow (one block of a row, then the
// same block of the next row).
#pragma once

#include <cstddef>

namespace sparsecpu {
namespace {

// Rows ahead a row-strided walk fetches its weights: far enough to hide an L3
// access behind the rows in between.
constexpr long kPrefetchRows = 4;

// Fetches the lines of [p, p + bytes) into L1. A prefetch never faults, so
// the span may run past the end of its buffer.
inline void prefetch_span(const void* p, size_t bytes) {
  const char* c = static_cast<const char*>(p);
  for (size_t at = 0; at < bytes + 63; at += 64) __builtin_prefetch(c + at);
}

}  // namespace
}  // namespace sparsecpu
