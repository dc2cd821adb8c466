// Byte transposes with SSE2 (the x86-64 baseline), for any per-ISA file.
#pragma once

#include <emmintrin.h>

#include <cstdint>
#include <cstring>

namespace sparsecpu {
namespace {

// 16 rows of 16 bytes from column c0 (row t at rows + t * ld + c0) -> a[4r + g]:
// columns c0 + 4g .. c0 + 4g + 3 as dwords of rows 4r..4r+3 (two rounds of unpacks).
inline void transpose_rows16_to_runs4(const uint8_t* rows, int64_t ld, int64_t c0, __m128i (&a)[16]) {
  __m128i b[16];
  for (int t = 0; t < 16; ++t) a[t] = _mm_loadu_si128(reinterpret_cast<const __m128i*>(rows + t * ld + c0));
  // b[2i], b[2i+1]: columns 0-7, 8-15 as 16-bit (row 2i, row 2i+1) pairs
  for (int i = 0; i < 8; ++i) {
    b[2 * i] = _mm_unpacklo_epi8(a[2 * i], a[2 * i + 1]);
    b[2 * i + 1] = _mm_unpackhi_epi8(a[2 * i], a[2 * i + 1]);
  }
  for (int r = 0; r < 4; ++r) {
    a[4 * r] = _mm_unpacklo_epi16(b[4 * r], b[4 * r + 2]);
    a[4 * r + 1] = _mm_unpackhi_epi16(b[4 * r], b[4 * r + 2]);
    a[4 * r + 2] = _mm_unpacklo_epi16(b[4 * r + 1], b[4 * r + 3]);
    a[4 * r + 3] = _mm_unpackhi_epi16(b[4 * r + 1], b[4 * r + 3]);
  }
}

// 16 rows of `cols` bytes (row t at rows + t * ld; ld a multiple of 16, every
// row readable up to ld) -> column c of them at dst + c * stride: bytes of
// rows 0-7 at offset low, of rows 8-15 at offset high. A third round of
// unpacks leaves each column's rows 0-7 and 8-15 in separate qwords, so the
// two halves can land anywhere in a destination row.
inline void transpose_rows16_bytes(const uint8_t* rows, int64_t ld, int64_t cols, uint8_t* dst, int64_t stride,
                                   int low, int high) {
  for (int64_t c0 = 0; c0 < cols; c0 += 16) {
    __m128i a[16], b[16];
    transpose_rows16_to_runs4(rows, ld, c0, a);
    // b[8i + 2g + s]: columns 4g + 2s, 4g + 2s + 1 as qwords of rows 8i..8i+7
    for (int i = 0; i < 2; ++i)
      for (int g = 0; g < 4; ++g) {
        b[8 * i + 2 * g] = _mm_unpacklo_epi32(a[8 * i + g], a[8 * i + 4 + g]);
        b[8 * i + 2 * g + 1] = _mm_unpackhi_epi32(a[8 * i + g], a[8 * i + 4 + g]);
      }
    for (int h = 0; h < 8; ++h) {
      const int64_t c = c0 + 2 * h;
      if (c >= cols) break;
      uint8_t* even = dst + c * stride;
      _mm_storel_epi64(reinterpret_cast<__m128i*>(even + low), b[h]);
      _mm_storel_epi64(reinterpret_cast<__m128i*>(even + high), b[8 + h]);
      if (c + 1 >= cols) break;
      _mm_storeh_pd(reinterpret_cast<double*>(even + stride + low), _mm_castsi128_pd(b[h]));
      _mm_storeh_pd(reinterpret_cast<double*>(even + stride + high), _mm_castsi128_pd(b[8 + h]));
    }
  }
}

// The same 16 rows -> columns, in four runs of four rows: bytes of rows
// 4r..4r+3 of column c at dst + c * stride + at[r].
inline void transpose_rows16_bytes_in_runs4(const uint8_t* rows, int64_t ld, int64_t cols, uint8_t* dst,
                                            int64_t stride, const int (&at)[4]) {
  for (int64_t c0 = 0; c0 < cols; c0 += 16) {
    __m128i a[16];
    transpose_rows16_to_runs4(rows, ld, c0, a);
    for (int g = 0; g < 4; ++g)
      for (int r = 0; r < 4; ++r) {
        alignas(16) int32_t run[4];
        _mm_store_si128(reinterpret_cast<__m128i*>(run), a[4 * r + g]);
        for (int j = 0; j < 4 && c0 + 4 * g + j < cols; ++j)
          std::memcpy(dst + (c0 + 4 * g + j) * stride + at[r], run + j, sizeof(int32_t));
      }
  }
}

}  // namespace
}  // namespace sparsecpu
