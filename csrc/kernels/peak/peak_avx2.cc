#include "kernels/simd/intrinsics.h"

#include "kernels/peak/peak.h"

namespace sparsecpu {

float peak_fp32_avx2(long iterations) {
  __m256 acc[12];
  for (int i = 0; i < 12; ++i) acc[i] = _mm256_set1_ps(0.001f * i);
  const __m256 a = _mm256_set1_ps(0.999f), b = _mm256_set1_ps(0.0001f);
  for (long it = 0; it < iterations; ++it)
#pragma GCC unroll 12
    for (int i = 0; i < 12; ++i) acc[i] = _mm256_fmadd_ps(acc[i], a, b);
  float sum = 0.0f;
  alignas(32) float lanes[8];
  for (int i = 0; i < 12; ++i) {
    _mm256_store_ps(lanes, acc[i]);
    sum += lanes[0];
  }
  return sum;
}

// What the AVX2 int8 kernels do per 4-byte dot product: two vpmaddwd and two adds.
// The products read the accumulator: with constant operands the compiler would
// hoist them and time the adds alone.
int peak_int8_avx2(long iterations) {
  __m256i acc[12];
  for (int i = 0; i < 12; ++i) acc[i] = _mm256_set1_epi32(i);
  const __m256i b = _mm256_set1_epi16(3), c = _mm256_set1_epi16(-2);
  for (long it = 0; it < iterations; ++it)
#pragma GCC unroll 12
    for (int i = 0; i < 12; ++i)
      acc[i] = _mm256_add_epi32(_mm256_add_epi32(acc[i], _mm256_madd_epi16(acc[i], b)), _mm256_madd_epi16(acc[i], c));
  int sum = 0;
  for (int i = 0; i < 12; ++i) sum += _mm256_extract_epi32(acc[i], 0);
  return sum;
}

}  // namespace sparsecpu
