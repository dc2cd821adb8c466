// fp32 block-sparse kernels for AVX-512 (F, BW, DQ, VL). Built with -mavx512*;
// reached only through the registry when the CPU and SPARSECPU_ISA allow it.
#include <immintrin.h>

#include "kernels/spmm_f32/spmm_f32_tiles.h"

namespace sparsecpu {
namespace {

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
  static V fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  static V add(V a, V b) { return _mm512_add_ps(a, b); }
  static V sub(V a, V b) { return _mm512_sub_ps(a, b); }
  static V mul(V a, V b) { return _mm512_mul_ps(a, b); }
  static V div(V a, V b) { return _mm512_div_ps(a, b); }
  static V max(V a, V b) { return _mm512_max_ps(a, b); }
  static V abs(V a) { return _mm512_abs_ps(a); }
  static V copysign(V magnitude, V sign) {
    const V sign_bit = _mm512_set1_ps(-0.0f);
    return _mm512_or_ps(_mm512_andnot_ps(sign_bit, magnitude), _mm512_and_ps(sign_bit, sign));
  }

  // dst[kk*16 + j] = src[j*ld + kk] for j < rows, kk < k.
  static void transpose_to_panel(const float* src, int64_t ld, int rows, int64_t k, float* dst) {
    for (int j = 0; j < rows; ++j) {
      const float* s = src + j * ld;
      for (int64_t kk = 0; kk < k; ++kk) dst[kk * kPanelTokens + j] = s[kk];
    }
  }
};

}  // namespace

void spmm_f32_bsr_r16_avx512(const SpmmF32Problem& p) { run_channel_tiles<Avx512F32, 1, 16, false>(p); }

void spmm_f32_dense_avx512(const SpmmF32Problem& p) { run_channel_tiles<Avx512F32, 1, 16, true>(p); }

void spmm_f32_bsr_r1to8_avx512(const SpmmF32Problem& p) {
  switch (p.w->block.rows) {
    case 1: return run_token_tiles<Avx512F32, 1, 12>(p);
    case 2: return run_token_tiles<Avx512F32, 2, 8>(p);
    case 4: return run_token_tiles<Avx512F32, 4, 6>(p);
    case 8: return run_token_tiles<Avx512F32, 8, 3>(p);
  }
}

}  // namespace sparsecpu
