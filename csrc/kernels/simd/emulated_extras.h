// Portable stand-ins for the intrinsics the kernels use that SIMDe 0.7 lacks,
// for the emulated test build only (see intrinsics.h). Macros, not functions:
// the compiler's own immintrin.h, which SIMDe includes for the native part,
// declares these names as functions that need the missing instructions.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

namespace sparsecpu::emulated {

template <class T, int N, class Vec>
inline void lanes_of(Vec v, T (&out)[N]) {
  static_assert(sizeof(Vec) == sizeof(T) * N, "lane count must fill the vector");
  std::memcpy(out, &v, sizeof(Vec));
}

template <class Vec, class T, int N>
inline Vec vector_of(const T (&in)[N]) {
  static_assert(sizeof(Vec) == sizeof(T) * N, "lane count must fill the vector");
  Vec v;
  std::memcpy(&v, in, sizeof(Vec));
  return v;
}

inline simde__m128i cvtepi32_epi8(simde__m512i a) {
  int32_t in[16];
  int8_t out[16];
  lanes_of(a, in);
  for (int i = 0; i < 16; ++i) out[i] = static_cast<int8_t>(static_cast<uint32_t>(in[i]) & 0xff);  // truncation
  return vector_of<simde__m128i>(out);
}

inline simde__m512 cvtepi32_ps(simde__m512i a) {
  int32_t in[16];
  float out[16];
  lanes_of(a, in);
  for (int i = 0; i < 16; ++i) out[i] = static_cast<float>(in[i]);
  return vector_of<simde__m512>(out);
}

// Round to nearest even (the default MXCSR mode); out of range or NaN gives INT32_MIN, as vcvtps2dq does.
inline simde__m512i cvtps_epi32(simde__m512 a) {
  float in[16];
  int32_t out[16];
  lanes_of(a, in);
  for (int i = 0; i < 16; ++i) {
    const float r = std::nearbyint(in[i]);
    out[i] = (r >= -2147483648.0f && r < 2147483648.0f) ? static_cast<int32_t>(r) : std::numeric_limits<int32_t>::min();
  }
  return vector_of<simde__m512i>(out);
}

// Masked loads and stores touch only the selected lanes' memory, as the instructions do.
template <class T, class Vec>
inline Vec maskz_loadu(uint16_t k, const void* p) {
  T lanes[16] = {};
  for (int i = 0; i < 16; ++i)
    if (k >> i & 1) std::memcpy(&lanes[i], static_cast<const char*>(p) + i * sizeof(T), sizeof(T));
  return vector_of<Vec>(lanes);
}

template <class T, class Vec>
inline void mask_storeu(void* p, uint16_t k, Vec v) {
  T lanes[16];
  lanes_of(v, lanes);
  for (int i = 0; i < 16; ++i)
    if (k >> i & 1) std::memcpy(static_cast<char*>(p) + i * sizeof(T), &lanes[i], sizeof(T));
}

// vpmovdw: each dword's low 16 bits.
inline simde__m256i cvtepi32_epi16(simde__m512i a) {
  int32_t in[16];
  uint16_t out[16];
  lanes_of(a, in);
  for (int i = 0; i < 16; ++i) out[i] = static_cast<uint16_t>(in[i]);
  return vector_of<simde__m256i>(out);
}

// vpmovzxwd, vpmovzxbd: 16 unsigned lanes of In widened to 32 bits.
template <class In, class Vec>
inline simde__m512i zero_extend_epi32(Vec a) {
  In in[16];
  uint32_t out[16];
  lanes_of(a, in);
  for (int i = 0; i < 16; ++i) out[i] = in[i];
  return vector_of<simde__m512i>(out);
}

// vpermilps: lane i takes lane (i & ~3) + (c[i] & 3) of a (within its 128-bit lane).
inline simde__m512 permutevar_ps(simde__m512 a, simde__m512i c) {
  float in[16], out[16];
  int32_t index[16];
  lanes_of(a, in);
  lanes_of(c, index);
  for (int i = 0; i < 16; ++i) out[i] = in[(i & ~3) + (index[i] & 3)];
  return vector_of<simde__m512>(out);
}

inline uint16_t testn_epi32_mask(simde__m512i a, simde__m512i b) {
  uint32_t x[16], y[16];
  lanes_of(a, x);
  lanes_of(b, y);
  uint16_t k = 0;
  for (int i = 0; i < 16; ++i) k |= static_cast<uint16_t>((x[i] & y[i]) == 0) << i;
  return k;
}

// Exact 1 / a: within the 2^-14 relative error vrcp14ps promises, though not its bits.
inline simde__m512 rcp14_ps(simde__m512 a) {
  float in[16];
  lanes_of(a, in);
  for (float& x : in) x = 1.0f / x;
  return vector_of<simde__m512>(in);
}

// Reductions in the order of the compiler's own: halves of 256, 128, 64 bits, then the last pair.
template <class T, class Op>
inline T reduce(const T (&in)[16], Op op) {
  T v[16];
  std::memcpy(v, in, sizeof(v));
  for (int width = 8; width >= 1; width /= 2)
    for (int i = 0; i < width; ++i) v[i] = op(v[i], v[i + width]);
  return v[0];
}

inline int32_t reduce_add_epi32(simde__m512i a) {
  int32_t in[16];
  lanes_of(a, in);
  // Wrapping, as vpaddd does.
  return reduce(in, [](int32_t x, int32_t y) {
    return static_cast<int32_t>(static_cast<uint32_t>(x) + static_cast<uint32_t>(y));
  });
}

inline float reduce_add_ps(simde__m512 a) {
  float in[16];
  lanes_of(a, in);
  return reduce(in, [](float x, float y) { return x + y; });
}

inline float reduce_max_ps(simde__m512 a) {
  float in[16];
  lanes_of(a, in);
  return reduce(in, [](float x, float y) { return x > y ? x : y; });
}

inline float reduce_min_ps(simde__m512 a) {
  float in[16];
  lanes_of(a, in);
  return reduce(in, [](float x, float y) { return x < y ? x : y; });
}

// Round to nearest even; a NaN stays a (quiet) NaN; a denormal becomes a zero
// of its sign (as the instruction does).
inline uint16_t bf16_bits(float x) {
  uint32_t bits;
  std::memcpy(&bits, &x, sizeof(bits));
  if (std::isnan(x)) return static_cast<uint16_t>((bits >> 16) | 0x40);
  if ((bits & 0x7f800000u) == 0) return static_cast<uint16_t>((bits >> 16) & 0x8000u);
  bits += 0x7fff + ((bits >> 16) & 1);
  return static_cast<uint16_t>(bits >> 16);
}

// Lanes 0-15 from b, 16-31 from a, as vcvtne2ps2bf16 orders them.
inline simde__m512bh cvtne2ps_pbh(simde__m512 a, simde__m512 b) {
  float fa[16], fb[16];
  lanes_of(a, fa);
  lanes_of(b, fb);
  uint16_t out[32];
  for (int i = 0; i < 16; ++i) {
    out[i] = bf16_bits(fb[i]);
    out[16 + i] = bf16_bits(fa[i]);
  }
  return vector_of<simde__m512bh>(out);
}

// 128-bit lanes 0-1 from a, 2-3 from b, each chosen by two bits of imm8.
inline simde__m512 shuffle_f32x4(simde__m512 a, simde__m512 b, int imm8) {
  float fa[16], fb[16], out[16];
  lanes_of(a, fa);
  lanes_of(b, fb);
  for (int lane = 0; lane < 4; ++lane) {
    const float* from = (lane < 2 ? fa : fb) + 4 * (imm8 >> (2 * lane) & 3);
    std::memcpy(out + 4 * lane, from, 4 * sizeof(float));
  }
  return vector_of<simde__m512>(out);
}

}  // namespace sparsecpu::emulated

#define _mm256_dpbusd_avx_epi32(src, a, b) simde_mm256_dpbusd_epi32(src, a, b)
#define _mm512_cvtepi32_epi8(a) sparsecpu::emulated::cvtepi32_epi8(a)
#define _mm512_cvtepi32_ps(a) sparsecpu::emulated::cvtepi32_ps(a)
#define _mm512_cvtps_epi32(a) sparsecpu::emulated::cvtps_epi32(a)
#define _mm512_maskz_loadu_epi32(k, p) (sparsecpu::emulated::maskz_loadu<int32_t, simde__m512i>((k), (p)))
#define _mm512_maskz_loadu_ps(k, p) (sparsecpu::emulated::maskz_loadu<float, simde__m512>((k), (p)))
#define _mm512_mask_storeu_epi32(p, k, v) (sparsecpu::emulated::mask_storeu<int32_t, simde__m512i>((p), (k), (v)))
#define _mm512_mask_storeu_ps(p, k, v) (sparsecpu::emulated::mask_storeu<float, simde__m512>((p), (k), (v)))
#define _mm512_rcp14_ps(a) sparsecpu::emulated::rcp14_ps(a)
#define _mm512_cvtepi32_epi16(a) sparsecpu::emulated::cvtepi32_epi16(a)
#define _mm512_cvtepu16_epi32(a) sparsecpu::emulated::zero_extend_epi32<uint16_t>(a)
#define _mm512_cvtepu8_epi32(a) sparsecpu::emulated::zero_extend_epi32<uint8_t>(a)
#define _mm512_permutevar_ps(a, c) sparsecpu::emulated::permutevar_ps(a, c)
#define _mm512_testn_epi32_mask(a, b) sparsecpu::emulated::testn_epi32_mask(a, b)
#define _mm256_maskz_loadu_epi16(k, p) (sparsecpu::emulated::maskz_loadu<uint16_t, simde__m256i>((k), (p)))
#define _mm256_mask_storeu_epi16(p, k, v) (sparsecpu::emulated::mask_storeu<uint16_t, simde__m256i>((p), (k), (v)))
#define _mm512_reduce_add_epi32(a) sparsecpu::emulated::reduce_add_epi32(a)
#define _mm512_reduce_add_ps(a) sparsecpu::emulated::reduce_add_ps(a)
#define _mm512_reduce_max_ps(a) sparsecpu::emulated::reduce_max_ps(a)
#define _mm512_reduce_min_ps(a) sparsecpu::emulated::reduce_min_ps(a)
#define _mm512_cvtne2ps_pbh(a, b) sparsecpu::emulated::cvtne2ps_pbh(a, b)
#define _mm512_shuffle_f32x4(a, b, imm8) sparsecpu::emulated::shuffle_f32x4(a, b, imm8)
