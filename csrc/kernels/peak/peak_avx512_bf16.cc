#include "kernels/simd/intrinsics.h"

#include "kernels/peak/peak.h"

namespace sparsecpu {

float peak_bf16_avx512_bf16(long iterations) {
  __m512 acc[12];
  for (int i = 0; i < 12; ++i) acc[i] = _mm512_set1_ps(0.001f * i);
  // bf16 pairs as bit patterns (as the attention kernel builds them): (0.996, 0.5) and (1e-4, 0.25).
  const __m512bh a = (__m512bh)_mm512_set1_epi32(0x3F003F7F);
  const __m512bh b = (__m512bh)_mm512_set1_epi32(0x3E8038D2);
  for (long it = 0; it < iterations; ++it)
#pragma GCC unroll 12
    for (int i = 0; i < 12; ++i) acc[i] = _mm512_dpbf16_ps(acc[i], a, b);
  float sum = 0.0f;
  for (int i = 0; i < 12; ++i) sum += _mm512_reduce_add_ps(acc[i]);
  return sum;
}

}  // namespace sparsecpu
