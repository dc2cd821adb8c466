// fp32 -> bf16 pairs for vdpbf16ps: only for files built with -mavx512bf16.
// A dword holds two bf16 values, element 2i in its low half, 2i + 1 in its
// high half; vdpbf16ps multiplies pairs and adds both products to an fp32 lane.
// Rounding is to nearest even (vcvtne2ps2bf16); NaN stays NaN.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "kernels/simd/avx512.h"

namespace sparsecpu {
namespace {

// dst[i] = (x[2i], x[2i + 1]) for i < (n + 1) / 2; an odd n pads with 0.
inline void to_bf16_pairs(const float* x, int64_t n, uint32_t* dst) {
  int64_t j = 0;
  for (; j + 32 <= n; j += 32)
    _mm512_storeu_si512(dst + j / 2, (__m512i)_mm512_cvtne2ps_pbh(_mm512_loadu_ps(x + j + 16), _mm512_loadu_ps(x + j)));
  if (j < n) {
    const int rest = static_cast<int>(n - j);
    const __mmask16 lo = Avx512F32::mask(std::min(rest, 16)), hi = Avx512F32::mask(std::max(rest - 16, 0));
    const __m512bh pairs = _mm512_cvtne2ps_pbh(_mm512_maskz_loadu_ps(hi, x + j + 16), _mm512_maskz_loadu_ps(lo, x + j));
    _mm512_mask_storeu_epi32(dst + j / 2, Avx512F32::mask((rest + 1) / 2), (__m512i)pairs);
  }
}

// dst[c] = (a[c], b[c]) for c < n: two rows interleaved, b null for zeros.
inline void interleave_bf16_pairs(const float* a, const float* b, int64_t n, uint32_t* dst) {
  // Word 2i from a's lane i (word i of the conversion), word 2i + 1 from b's (word 16 + i).
  const __m512i order = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23, 7, 22, 6,
                                         21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
  for (int64_t c = 0; c < n; c += 16) {
    const __mmask16 m = Avx512F32::mask(static_cast<int>(std::min<int64_t>(16, n - c)));
    const __m512bh both = _mm512_cvtne2ps_pbh(b ? _mm512_maskz_loadu_ps(m, b + c) : _mm512_setzero_ps(),
                                              _mm512_maskz_loadu_ps(m, a + c));
    _mm512_mask_storeu_epi32(dst + c, m, _mm512_permutexvar_epi16(order, (__m512i)both));
  }
}

// dst[i] = (x[2i], x[2i + 1]) for i < (n + 1) / 2 of bf16 bit patterns: a
// copy, with an odd n's last pair padded with 0 (as to_bf16_pairs pads).
inline void copy_bf16_pairs(const uint16_t* x, int64_t n, uint32_t* dst) {
  std::memcpy(dst, x, static_cast<size_t>(n / 2) * sizeof(uint32_t));
  if (n % 2) dst[n / 2] = x[n - 1];
}

// dst[c] = (a[c], b[c]) for c < n of bf16 bit patterns, b null for zeros.
inline void interleave_bf16_rows(const uint16_t* a, const uint16_t* b, int64_t n, uint32_t* dst) {
  for (int64_t c = 0; c < n; c += 16) {
    const __mmask16 m = Avx512F32::mask(static_cast<int>(std::min<int64_t>(16, n - c)));
    const __m512i low = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, a + c));
    const __m512i high = b ? _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, b + c)), 16)
                           : _mm512_setzero_si512();
    _mm512_mask_storeu_epi32(dst + c, m, _mm512_or_si512(low, high));
  }
}

}  // namespace
}  // namespace sparsecpu
