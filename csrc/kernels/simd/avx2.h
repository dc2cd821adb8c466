// fp32 SIMD traits for AVX2: only for files built with -mavx2 -mfma.
// Internal linkage, so builds of this header for different instruction sets
// never meet in the linker.
#pragma once

#include "kernels/simd/intrinsics.h"

#include <algorithm>
#include <cstdint>
#include <cstring>

namespace sparsecpu {
namespace {

// Tokens per fp32 activation panel (one 64-byte line per input column).
constexpr int kPanelTokens = 16;

struct Avx2F32 {
  using V = __m256;
  static constexpr int L = 8;
  static V zero() { return _mm256_setzero_ps(); }
  static V set1(float v) { return _mm256_set1_ps(v); }
  static V load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, V v) { _mm256_storeu_ps(p, v); }
  static __m256i mask(int lanes) {
    alignas(32) static const int32_t kTable[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(kTable + 8 - lanes));
  }
  static V mask_ps(int lanes) { return _mm256_castsi256_ps(mask(lanes)); }
  // Whole vectors take plain moves: vmaskmovps stores are microcoded on AMD
  // (Zen 3: a profile put ~45% of a per-token int8 epilogue on one).
  static V load_partial(const float* p, int lanes) {
    return lanes == L ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, mask(lanes));
  }
  static void store_partial(float* p, V v, int lanes) {
    if (lanes == L) _mm256_storeu_ps(p, v);
    else _mm256_maskstore_ps(p, mask(lanes), v);
  }
  static V bcast(const float* p) { return _mm256_broadcast_ss(p); }
  // 2:4 groups, vectors over rows (spmm_f32_semi24_tiles.h): a vector is one
  // block of 8 rows (`high` is always null); every 4 lanes select from a group
  // of four inputs broadcast to each of them.
  using Index = __m256i;
  static V bcast4(const float* p) { return _mm256_broadcast_ps(reinterpret_cast<const __m128*>(p)); }
  static V load_row_blocks(const float* low, const float*) { return _mm256_loadu_ps(low); }
  static Index row_block_positions(const uint8_t* low, const uint8_t*) {
    return _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(low)));
  }
  static V select_in_groups(V groups, Index position) { return _mm256_permutevar_ps(groups, position); }
  static V fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  static V add(V a, V b) { return _mm256_add_ps(a, b); }
  static V sub(V a, V b) { return _mm256_sub_ps(a, b); }
  static V mul(V a, V b) { return _mm256_mul_ps(a, b); }
  static V div(V a, V b) { return _mm256_div_ps(a, b); }
  static V max(V a, V b) { return _mm256_max_ps(a, b); }
  static V min(V a, V b) { return _mm256_min_ps(a, b); }
  static float reduce_min(V a) {
    __m128 m = _mm_min_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    m = _mm_min_ps(m, _mm_movehl_ps(m, m));
    return _mm_cvtss_f32(_mm_min_ss(m, _mm_movehdup_ps(m)));
  }
  static float reduce_max(V a) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    return _mm_cvtss_f32(_mm_max_ss(m, _mm_movehdup_ps(m)));
  }
  static float reduce_add(V a) {
    __m128 m = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    m = _mm_add_ps(m, _mm_movehl_ps(m, m));
    return _mm_cvtss_f32(_mm_add_ss(m, _mm_movehdup_ps(m)));
  }

  // a, b, c, d hold channels 0..3; lane i of each is token
  // first_token + 16 * (i / 4) + i % 4. Writes y[token][0..3] (+ residual).
  static void store_4x4_transposed(const float* a, const float* b, const float* c, const float* d, float* y,
                                   int64_t ldy, const float* residual, int64_t ldr, int64_t first_token) {
    const V va = load(a), vb = load(b), vc = load(c), vd = load(d);
    const V ab_lo = _mm256_unpacklo_ps(va, vb), ab_hi = _mm256_unpackhi_ps(va, vb);
    const V cd_lo = _mm256_unpacklo_ps(vc, vd), cd_hi = _mm256_unpackhi_ps(vc, vd);
    const V token[4] = {
        _mm256_castpd_ps(_mm256_unpacklo_pd(_mm256_castps_pd(ab_lo), _mm256_castps_pd(cd_lo))),
        _mm256_castpd_ps(_mm256_unpackhi_pd(_mm256_castps_pd(ab_lo), _mm256_castps_pd(cd_lo))),
        _mm256_castpd_ps(_mm256_unpacklo_pd(_mm256_castps_pd(ab_hi), _mm256_castps_pd(cd_hi))),
        _mm256_castpd_ps(_mm256_unpackhi_pd(_mm256_castps_pd(ab_hi), _mm256_castps_pd(cd_hi)))};
    for (int i = 0; i < 4; ++i) {
      store_half4(_mm256_castps256_ps128(token[i]), y, ldy, residual, ldr, first_token + i);
      store_half4(_mm256_extractf128_ps(token[i], 1), y, ldy, residual, ldr, first_token + 16 + i);
    }
  }
  static void store_half4(__m128 x, float* y, int64_t ldy, const float* residual, int64_t ldr, int64_t token) {
    if (residual) x = _mm_add_ps(x, _mm_loadu_ps(residual + token * ldr));
    _mm_storeu_ps(y + token * ldy, x);
  }
  static V unordered(V a) { return _mm256_cmp_ps(a, a, _CMP_UNORD_Q); }
  static V bit_or(V a, V b) { return _mm256_or_ps(a, b); }
  static bool any(V a) { return !_mm256_testz_ps(a, a); }
  static void transpose_square(V* r) { transpose8x8(r); }

  // 8 floats -> bf16 as vcvtneps2bf16 converts them (see formats/bf16_groups.h).
  static __m128i to_bf16(V v) {
    const __m256i bits = _mm256_castps_si256(v), high = _mm256_srli_epi32(bits, 16);
    const __m256i bias = _mm256_add_epi32(_mm256_set1_epi32(0x7fff), _mm256_and_si256(high, _mm256_set1_epi32(1)));
    __m256i out = _mm256_srli_epi32(_mm256_add_epi32(bits, bias), 16);
    const __m256i nan = _mm256_castps_si256(_mm256_cmp_ps(v, v, _CMP_UNORD_Q));
    out = _mm256_blendv_epi8(out, _mm256_or_si256(high, _mm256_set1_epi32(0x40)), nan);
    const __m256i denormal =
        _mm256_cmpeq_epi32(_mm256_and_si256(bits, _mm256_set1_epi32(0x7f800000)), _mm256_setzero_si256());
    out = _mm256_blendv_epi8(out, _mm256_and_si256(high, _mm256_set1_epi32(0x8000)), denormal);
    // Every dword is below 2^16: the pack (signed dwords to unsigned words, saturating) keeps it.
    return _mm_packus_epi32(_mm256_castsi256_si128(out), _mm256_extracti128_si256(out, 1));
  }
  static void store_bf16_partial(uint16_t* p, V v, int lanes) {
    const __m128i bf16 = to_bf16(v);
    if (lanes == L) return _mm_storeu_si128(reinterpret_cast<__m128i*>(p), bf16);
    alignas(16) uint16_t tmp[L];
    _mm_store_si128(reinterpret_cast<__m128i*>(tmp), bf16);
    std::memcpy(p, tmp, sizeof(uint16_t) * lanes);
  }
  static V abs(V a) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), a); }
  // 1 / a to ~2 ulp: 12-bit estimate and one Newton step (vdivps is several times slower).
  static V recip(V a) {
    const V r = _mm256_rcp_ps(a);
    return _mm256_mul_ps(r, _mm256_fnmadd_ps(a, r, _mm256_set1_ps(2.0f)));
  }
  static V round(V a) { return _mm256_round_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  // x * 2^n for integral n with |n| < 127.
  static V scale_pow2(V x, V n) {
    const __m256i biased = _mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127));
    return _mm256_mul_ps(x, _mm256_castsi256_ps(_mm256_slli_epi32(biased, 23)));
  }
  static V copysign(V magnitude, V sign) {
    const V sign_bit = _mm256_set1_ps(-0.0f);
    return _mm256_or_ps(_mm256_andnot_ps(sign_bit, magnitude), _mm256_and_ps(sign_bit, sign));
  }

  // dst[kk * row_floats + j] = src[j * ld + kk] for kk < k, j < 16; lanes j >= rows are zero.
  // Tokens 0-7 and 8-15 are transposed as two 8x8 blocks.
  static void transpose_to_panel(const float* src, int64_t ld, int rows, int64_t k, float* dst,
                                 int64_t row_floats = kPanelTokens) {
    for (int64_t kk = 0; kk < k; kk += 8) {
      const int cols = static_cast<int>(std::min<int64_t>(8, k - kk));
      const __m256i col_mask = mask(cols);
      for (int half = 0; half < 2; ++half) {
        __m256 r[8];
        for (int j = 0; j < 8; ++j) {
          const int row = half * 8 + j;
          r[j] = row < rows ? _mm256_maskload_ps(src + row * ld + kk, col_mask) : _mm256_setzero_ps();
        }
        transpose8x8(r);
        for (int c = 0; c < cols; ++c) _mm256_storeu_ps(dst + (kk + c) * row_floats + half * 8, r[c]);
      }
    }
  }

  // In-register transpose: r[c] becomes column c of the 8x8 input.
  static void transpose8x8(__m256 r[8]) {
    __m256 t[8], s[8];
    for (int i = 0; i < 4; ++i) {
      t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
      t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int g = 0; g < 2; ++g) {  // s[4g + j]: rows 4g..4g+3 of columns j and j+4
      s[4 * g + 0] = _mm256_shuffle_ps(t[4 * g], t[4 * g + 2], 0x44);
      s[4 * g + 1] = _mm256_shuffle_ps(t[4 * g], t[4 * g + 2], 0xEE);
      s[4 * g + 2] = _mm256_shuffle_ps(t[4 * g + 1], t[4 * g + 3], 0x44);
      s[4 * g + 3] = _mm256_shuffle_ps(t[4 * g + 1], t[4 * g + 3], 0xEE);
    }
    for (int j = 0; j < 4; ++j) {
      r[j] = _mm256_permute2f128_ps(s[j], s[4 + j], 0x20);
      r[j + 4] = _mm256_permute2f128_ps(s[j], s[4 + j], 0x31);
    }
  }
};

}  // namespace
}  // namespace sparsecpu
