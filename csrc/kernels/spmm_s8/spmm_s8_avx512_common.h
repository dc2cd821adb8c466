// The int8 SIMD traits of the AVX512-VNNI kernels (vpdpbusd on 512-bit
// vectors), shared by the files built for AVX512-VNNI and for AVX512-BF16
// (which differ in how kernels/simd/avx512.h converts bf16 outputs). Only for
// those files; internal linkage (see kernels/tile_schedule.h).
#pragma once

#include "kernels/simd/avx512.h"
#include "kernels/spmm_s8/spmm_s8_semi24_tiles.h"
#include "kernels/spmm_s8/spmm_s8_tiles.h"

namespace sparsecpu {
namespace {

struct Avx512VnniS8 {
  static constexpr bool kPairs = false;
  static constexpr bool kHalfTokenOrder = true;  // quads: a last tile of up to 32 tokens runs one half
  using F = Avx512F32;
  using V = __m512i;
  using A = __m512i;  // u8 operand, used as is
  using B = __m512i;  // s8 operand, used as is
  static constexpr int L = 16;

  static V zero() { return _mm512_setzero_si512(); }
  static V load(const void* p) { return _mm512_loadu_si512(p); }
  static void store(void* p, V v) { _mm512_storeu_si512(p, v); }
  static V load_partial32(const int32_t* p, int lanes) {
    return _mm512_maskz_loadu_epi32(static_cast<__mmask16>((1u << lanes) - 1u), p);
  }
  static V bcast32(const void* p) {
    int32_t v;
    std::memcpy(&v, p, 4);
    return _mm512_set1_epi32(v);
  }
  static V bcast64(const void* p) {
    int64_t v;
    std::memcpy(&v, p, 8);
    return _mm512_set1_epi64(v);
  }
  static V shuffle8(V table, V control) { return _mm512_shuffle_epi8(table, control); }
  static V set1_32(int32_t v) { return _mm512_set1_epi32(v); }
  static V sub32(V a, V b) { return _mm512_sub_epi32(a, b); }
  static V mul32(V a, V b) { return _mm512_mullo_epi32(a, b); }
  static F::V to_float(V v) { return _mm512_cvtepi32_ps(v); }
  static F::V float_bits(V v) { return _mm512_castsi512_ps(v); }  // reinterpreted, not converted
  static V int_bits(F::V v) { return _mm512_castps_si512(v); }
  static V unpacklo8(V a, V b) { return _mm512_unpacklo_epi8(a, b); }
  static V unpackhi8(V a, V b) { return _mm512_unpackhi_epi8(a, b); }
  static V unpacklo16(V a, V b) { return _mm512_unpacklo_epi16(a, b); }
  static V unpackhi16(V a, V b) { return _mm512_unpackhi_epi16(a, b); }
  static A prep_a(V v) { return v; }
  static B prep_b(V v) { return v; }
  static V dot(V acc, A a, B b) { return _mm512_dpbusd_epi32(acc, a, b); }

  // dst[j] = clamp(nearbyint(x[j] * inv) + zp, 0, 255), as quantize_value().
  // 64 values at a time through the saturating packs (int32 -> int16 ->
  // u8 clamps to [0, 255] as min/max would; a NaN converts to INT32_MIN and
  // becomes 0), which leave dword i of 128-bit lane l holding source vector
  // i's values 4l..4l+3: one vpermd restores the order. Measured against
  // vpmovdb per 16 (two uops on Zen 4/5).
  static __m512i quantize_i32(__m512 x, __m512 inv, __m512i zp) {
    return _mm512_add_epi32(_mm512_cvtps_epi32(_mm512_mul_ps(x, inv)), zp);
  }
  static void quantize_row(const float* x, int64_t k, float inv, float zp, uint8_t* dst) {
    const __m512 vinv = _mm512_set1_ps(inv);
    const __m512i vzp = _mm512_set1_epi32(static_cast<int32_t>(zp));
    const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    int64_t j = 0;
    for (; j + 64 <= k; j += 64) {
      const __m512i a = quantize_i32(_mm512_loadu_ps(x + j), vinv, vzp);
      const __m512i b = quantize_i32(_mm512_loadu_ps(x + j + 16), vinv, vzp);
      const __m512i c = quantize_i32(_mm512_loadu_ps(x + j + 32), vinv, vzp);
      const __m512i d = quantize_i32(_mm512_loadu_ps(x + j + 48), vinv, vzp);
      const __m512i bytes = _mm512_packus_epi16(_mm512_packs_epi32(a, b), _mm512_packs_epi32(c, d));
      _mm512_storeu_si512(dst + j, _mm512_permutexvar_epi32(order, bytes));
    }
    for (; j + 16 <= k; j += 16) {
      const __m512i q = quantize_i32(_mm512_loadu_ps(x + j), vinv, vzp);
      const __m512i clamped = _mm512_min_epi32(_mm512_max_epi32(q, _mm512_setzero_si512()), _mm512_set1_epi32(255));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + j), _mm512_cvtepi32_epi8(clamped));
    }
    for (; j < k; ++j) dst[j] = quantize_value(x[j], inv, zp);
  }
};

// The kernels, as both files build them.
// 2 x 16 channels x 12 tokens: 24 accumulators, 14 loads per 24 vpdpbusd.
inline void run_dense_avx512(const SpmmS8Problem& p) { run_dense<Avx512VnniS8, 2, 12>(p); }

// 4 rows x 64 tokens (32 when the call's last tile holds no more): 16
// accumulators; 4 loads and 8 unpacks per 16 vpdpbusd.
inline void run_quads_avx512(const SpmmS8Problem& p) { run_quads<Avx512VnniS8, 4>(p); }

// 2:4: 2 vectors of channels x 10 tokens, one byte shuffle per dot product.
// (12 tokens: 24 sums, 2 weight and 2 position vectors left GCC spilling
// around the dot products; 10 measured 1.02-1.05x.)
inline void run_semi24_avx512(const SpmmS8Problem& p) { run_semi24<Avx512VnniS8, 2, 10>(p); }

}  // namespace
}  // namespace sparsecpu
