// The 256-bit integer traits the AVX2 and AVX-VNNI int8 kernels share; each
// adds its own dot product. Only for files built with -mavx2.
#pragma once

#include <cstring>

#include "kernels/simd/avx2.h"
#include "kernels/spmm_s8/spmm_s8_tiles.h"

namespace sparsecpu {
namespace {

struct Avx2S8Base {
  using F = Avx2F32;
  static constexpr bool kPairs = false;  // weights as int8 values (else widened to 16-bit pairs)
  using V = __m256i;
  static constexpr int L = 8;

  static V zero() { return _mm256_setzero_si256(); }
  static V load(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }
  static void store(void* p, V v) { _mm256_storeu_si256(static_cast<__m256i*>(p), v); }
  static V load_partial32(const int32_t* p, int lanes) { return _mm256_maskload_epi32(p, _mm256_castps_si256(Avx2F32::mask_ps(lanes))); }
  static V bcast32(const void* p) {
    int32_t v;
    std::memcpy(&v, p, 4);
    return _mm256_set1_epi32(v);
  }
  static V bcast64(const void* p) {
    int64_t v;
    std::memcpy(&v, p, 8);
    return _mm256_set1_epi64x(v);
  }
  static V widen16(const uint8_t* p) {  // 16 bytes, zero-extended to 16 bits
    return _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  }
  static V widen32(const uint8_t* p) {  // 8 bytes, zero-extended to 32 bits
    return _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
  }
  static V permute32(V table, V index) { return _mm256_permutevar8x32_epi32(table, index); }
  static V low_halves(V a, V b) { return _mm256_permute2x128_si256(a, b, 0x20); }   // a.lo | b.lo
  static V high_halves(V a, V b) { return _mm256_permute2x128_si256(a, b, 0x31); }  // a.hi | b.hi
  static V shuffle8(V table, V control) { return _mm256_shuffle_epi8(table, control); }
  static V set1_32(int32_t v) { return _mm256_set1_epi32(v); }
  static V add32(V a, V b) { return _mm256_add_epi32(a, b); }
  static V sub32(V a, V b) { return _mm256_sub_epi32(a, b); }
  static V mul32(V a, V b) { return _mm256_mullo_epi32(a, b); }
  static F::V to_float(V v) { return _mm256_cvtepi32_ps(v); }
  static F::V float_bits(V v) { return _mm256_castsi256_ps(v); }  // reinterpreted, not converted
  static V int_bits(F::V v) { return _mm256_castps_si256(v); }
  static V unpacklo8(V a, V b) { return _mm256_unpacklo_epi8(a, b); }
  static V unpackhi8(V a, V b) { return _mm256_unpackhi_epi8(a, b); }
  static V unpacklo16(V a, V b) { return _mm256_unpacklo_epi16(a, b); }
  static V unpackhi16(V a, V b) { return _mm256_unpackhi_epi16(a, b); }

  // 8 values, as quantize_value(); returns them in the low 8 bytes.
  static uint64_t quantize8(__m256 x, __m256 inv, __m256i zp) {
    const __m256i q = _mm256_add_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(x, inv)), zp);
    const __m256i c = _mm256_min_epi32(_mm256_max_epi32(q, _mm256_setzero_si256()), _mm256_set1_epi32(255));
    const __m128i w = _mm_packus_epi32(_mm256_castsi256_si128(c), _mm256_extracti128_si256(c, 1));
    return static_cast<uint64_t>(_mm_cvtsi128_si64(_mm_packus_epi16(w, w)));
  }
  static void quantize_row(const float* x, int64_t k, float inv, float zp, uint8_t* dst) {
    const __m256 vinv = _mm256_set1_ps(inv);
    const __m256i vzp = _mm256_set1_epi32(static_cast<int32_t>(zp));
    int64_t j = 0;
    for (; j + 8 <= k; j += 8) {
      const uint64_t bytes = quantize8(_mm256_loadu_ps(x + j), vinv, vzp);
      std::memcpy(dst + j, &bytes, 8);
    }
    for (; j < k; ++j) dst[j] = quantize_value(x[j], inv, zp);
  }
};

}  // namespace
}  // namespace sparsecpu
