#include "kernels/simd/intrinsics.h"

#include "kernels/peak/peak.h"

namespace sparsecpu {

int peak_int8_avx2_vnni(long iterations) {
  __m256i acc[12];
  for (int i = 0; i < 12; ++i) acc[i] = _mm256_set1_epi32(i);
  const __m256i a = _mm256_set1_epi8(3), b = _mm256_set1_epi8(-2);
  for (long it = 0; it < iterations; ++it)
#pragma GCC unroll 12
    for (int i = 0; i < 12; ++i) acc[i] = _mm256_dpbusd_avx_epi32(acc[i], a, b);
  int sum = 0;
  for (int i = 0; i < 12; ++i) sum += _mm256_extract_epi32(acc[i], 0);
  return sum;
}

}  // namespace sparsecpu
