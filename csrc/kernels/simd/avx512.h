// fp32 SIMD traits for AVX512: only for files built with -mavx512f -mavx512bw -mavx512dq -mavx512vl.
// Internal linkage, so builds of this header for different instruction sets
// never meet in the linker.
#pragma once

#include "kernels/simd/intrinsics.h"

#include <algorithm>
#include <cstdint>

namespace sparsecpu {
namespace {

// Tokens per fp32 activation panel (one 64-byte line per input column).
constexpr int kPanelTokens = 16;

struct Avx512F32 {
  using V = __m512;
  static constexpr int L = 16;
  static V zero() { return _mm512_setzero_ps(); }
  static V set1(float v) { return _mm512_set1_ps(v); }
  static V load(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, V v) { _mm512_storeu_ps(p, v); }
  static __mmask16 mask(int lanes) { return static_cast<__mmask16>((1u << lanes) - 1u); }
  static V load_partial(const float* p, int lanes) { return _mm512_maskz_loadu_ps(mask(lanes), p); }
  static void store_partial(float* p, V v, int lanes) { _mm512_mask_storeu_ps(p, mask(lanes), v); }
  static V bcast(const float* p) { return _mm512_set1_ps(*p); }
  // 2:4 groups, vectors over rows (spmm_f32_semi24_tiles.h): a vector is two
  // blocks of 8 rows (a missing block, past the last row, reads as zeros);
  // every 4 lanes select from a group of four inputs broadcast to each of them.
  using Index = __m512i;
  static V bcast4(const float* p) { return _mm512_broadcast_f32x4(_mm_loadu_ps(p)); }
  static V load_row_blocks(const float* low, const float* high) {
    const __m512 lo = _mm512_castps256_ps512(_mm256_loadu_ps(low));
    return high ? _mm512_insertf32x8(lo, _mm256_loadu_ps(high), 1) : _mm512_insertf32x8(lo, _mm256_setzero_ps(), 1);
  }
  static Index row_block_positions(const uint8_t* low, const uint8_t* high) {
    const __m128i lo = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(low));
    const __m128i hi = high ? _mm_loadl_epi64(reinterpret_cast<const __m128i*>(high)) : _mm_setzero_si128();
    return _mm512_cvtepu8_epi32(_mm_unpacklo_epi64(lo, hi));
  }
  static V select_in_groups(V groups, Index position) { return _mm512_permutevar_ps(groups, position); }
  static V fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  static V add(V a, V b) { return _mm512_add_ps(a, b); }
  static V sub(V a, V b) { return _mm512_sub_ps(a, b); }
  static V mul(V a, V b) { return _mm512_mul_ps(a, b); }
  static V div(V a, V b) { return _mm512_div_ps(a, b); }
  static V max(V a, V b) { return _mm512_max_ps(a, b); }
  static V min(V a, V b) { return _mm512_min_ps(a, b); }
  static float reduce_min(V a) { return _mm512_reduce_min_ps(a); }
  static float reduce_max(V a) { return _mm512_reduce_max_ps(a); }
  static float reduce_add(V a) { return _mm512_reduce_add_ps(a); }

  // a, b, c, d hold channels 0..3; lane i of each is token
  // first_token + 16 * (i / 4) + i % 4. Writes y[token][0..3] (+ residual).
  static void store_4x4_transposed(const float* a, const float* b, const float* c, const float* d, float* y,
                                   int64_t ldy, const float* residual, int64_t ldr, int64_t first_token) {
    const V va = load(a), vb = load(b), vc = load(c), vd = load(d);
    const V ab_lo = _mm512_unpacklo_ps(va, vb), ab_hi = _mm512_unpackhi_ps(va, vb);
    const V cd_lo = _mm512_unpacklo_ps(vc, vd), cd_hi = _mm512_unpackhi_ps(vc, vd);
    // token_i[lane] = the 4 channels of token first_token + 16 * lane + i
    const V token[4] = {
        _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(ab_lo), _mm512_castps_pd(cd_lo))),
        _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(ab_lo), _mm512_castps_pd(cd_lo))),
        _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(ab_hi), _mm512_castps_pd(cd_hi))),
        _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(ab_hi), _mm512_castps_pd(cd_hi)))};
    for (int i = 0; i < 4; ++i) {
      store_lane4<0>(token[i], y, ldy, residual, ldr, first_token + i);
      store_lane4<1>(token[i], y, ldy, residual, ldr, first_token + 16 + i);
      store_lane4<2>(token[i], y, ldy, residual, ldr, first_token + 32 + i);
      store_lane4<3>(token[i], y, ldy, residual, ldr, first_token + 48 + i);
    }
  }
  template <int Lane>
  static void store_lane4(V v, float* y, int64_t ldy, const float* residual, int64_t ldr, int64_t token) {
    __m128 x = _mm512_extractf32x4_ps(v, Lane);
    if (residual) x = _mm_add_ps(x, _mm_loadu_ps(residual + token * ldr));
    _mm_storeu_ps(y + token * ldy, x);
  }
  static V unordered(V a) { return _mm512_castsi512_ps(_mm512_movm_epi32(_mm512_cmp_ps_mask(a, a, _CMP_UNORD_Q))); }
  static V bit_or(V a, V b) { return _mm512_or_ps(a, b); }
  static bool any(V a) { return _mm512_test_epi32_mask(_mm512_castps_si512(a), _mm512_castps_si512(a)) != 0; }
  static void transpose_square(V* r) { transpose16x16(r); }

  // 16 floats -> bf16 as vcvtneps2bf16 converts them (see
  // formats/bf16_groups.h): that instruction where the file is built for it,
  // else AVX512F/BW integer steps (int8 kernels on CPUs with VNNI but not
  // BF16, such as Ice Lake and Cascade Lake, may write bf16 too).
  static __m256i to_bf16(V v) {
#ifdef __AVX512BF16__
    return (__m256i)_mm512_cvtneps_pbh(v);
#else
    const __m512i bits = _mm512_castps_si512(v), high = _mm512_srli_epi32(bits, 16);
    const __m512i bias = _mm512_add_epi32(_mm512_set1_epi32(0x7fff), _mm512_and_si512(high, _mm512_set1_epi32(1)));
    __m512i out = _mm512_srli_epi32(_mm512_add_epi32(bits, bias), 16);
    out = _mm512_mask_or_epi32(out, _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q), high, _mm512_set1_epi32(0x40));
    const __mmask16 denormal = _mm512_testn_epi32_mask(bits, _mm512_set1_epi32(0x7f800000));
    out = _mm512_mask_and_epi32(out, denormal, high, _mm512_set1_epi32(0x8000));
    return _mm512_cvtepi32_epi16(out);
#endif
  }
  static void store_bf16_partial(uint16_t* p, V v, int lanes) {
    if (lanes == L)
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), to_bf16(v));
    else
      _mm256_mask_storeu_epi16(p, mask(lanes), to_bf16(v));
  }
  static V abs(V a) { return _mm512_abs_ps(a); }
  // 1 / a to ~1 ulp: 14-bit estimate and one Newton step (vdivps is ~8x slower).
  static V recip(V a) {
    const V r = _mm512_rcp14_ps(a);
    return _mm512_mul_ps(r, _mm512_fnmadd_ps(a, r, _mm512_set1_ps(2.0f)));
  }
  static V round(V a) { return _mm512_roundscale_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  // x * 2^n for integral n with |n| < 127.
  static V scale_pow2(V x, V n) { return _mm512_scalef_ps(x, n); }
  static V copysign(V magnitude, V sign) {
    const V sign_bit = _mm512_set1_ps(-0.0f);
    return _mm512_or_ps(_mm512_andnot_ps(sign_bit, magnitude), _mm512_and_ps(sign_bit, sign));
  }

  // dst[kk * row_floats + j] = src[j * ld + kk] for kk < k, j < 16; lanes j >= rows are zero.
  static void transpose_to_panel(const float* src, int64_t ld, int rows, int64_t k, float* dst,
                                 int64_t row_floats = kPanelTokens) {
    for (int64_t kk = 0; kk < k; kk += 16) {
      const int cols = static_cast<int>(std::min<int64_t>(16, k - kk));
      const __mmask16 col_mask = mask(cols);
      __m512 r[16];
      for (int j = 0; j < 16; ++j)
        r[j] = j < rows ? _mm512_maskz_loadu_ps(col_mask, src + j * ld + kk) : _mm512_setzero_ps();
      transpose16x16(r);
      for (int c = 0; c < cols; ++c) _mm512_storeu_ps(dst + (kk + c) * row_floats, r[c]);
    }
  }

  // In-register transpose: r[c] becomes column c of the 16x16 input.
  static void transpose16x16(__m512 r[16]) {
    __m512 t[16], u[16];
    for (int i = 0; i < 8; ++i) {
      t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
      t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    // u[4g + j]: rows 4g..4g+3 of columns j, j+4, j+8, j+12 (one per 128-bit lane).
    for (int g = 0; g < 4; ++g) {
      const __m512d lo0 = _mm512_castps_pd(t[4 * g]), hi0 = _mm512_castps_pd(t[4 * g + 1]);
      const __m512d lo1 = _mm512_castps_pd(t[4 * g + 2]), hi1 = _mm512_castps_pd(t[4 * g + 3]);
      u[4 * g + 0] = _mm512_castpd_ps(_mm512_unpacklo_pd(lo0, lo1));
      u[4 * g + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(lo0, lo1));
      u[4 * g + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(hi0, hi1));
      u[4 * g + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(hi0, hi1));
    }
    for (int j = 0; j < 4; ++j) {
      const __m512 even01 = _mm512_shuffle_f32x4(u[j], u[4 + j], 0x88);
      const __m512 odd01 = _mm512_shuffle_f32x4(u[j], u[4 + j], 0xDD);
      const __m512 even23 = _mm512_shuffle_f32x4(u[8 + j], u[12 + j], 0x88);
      const __m512 odd23 = _mm512_shuffle_f32x4(u[8 + j], u[12 + j], 0xDD);
      r[j] = _mm512_shuffle_f32x4(even01, even23, 0x88);
      r[j + 8] = _mm512_shuffle_f32x4(even01, even23, 0xDD);
      r[j + 4] = _mm512_shuffle_f32x4(odd01, odd23, 0x88);
      r[j + 12] = _mm512_shuffle_f32x4(odd01, odd23, 0xDD);
    }
  }
};

}  // namespace
}  // namespace sparsecpu
