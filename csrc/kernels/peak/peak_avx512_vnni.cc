#include "kernels/simd/intrinsics.h"

#include "kernels/peak/peak.h"

namespace sparsecpu {

int peak_int8_avx512_vnni(long iterations) {
  __m512i acc[12];
  for (int i = 0; i < 12; ++i) acc[i] = _mm512_set1_epi32(i);
  const __m512i a = _mm512_set1_epi8(3), b = _mm512_set1_epi8(-2);
  for (long it = 0; it < iterations; ++it)
#pragma GCC unroll 12
    for (int i = 0; i < 12; ++i) acc[i] = _mm512_dpbusd_epi32(acc[i], a, b);
  int sum = 0;
  for (int i = 0; i < 12; ++i) sum += _mm512_reduce_add_epi32(acc[i]);
  return sum;
}

}  // namespace sparsecpu
