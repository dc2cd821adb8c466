// int8 kernels for AVX2 without VNNI. vpmaddubsw would saturate its 16-bit
// pair sums (255 * -128 * 2 < -32768), so the dot product is done exactly:
// even and odd bytes are widened to 16 bits and multiplied with vpmaddwd.
// Built with -mavx2 -mfma; reached only through the registry.
#include "kernels/simd/avx2.h"
#include "kernels/spmm_s8/spmm_s8_avx2_common.h"
#include "kernels/spmm_s8/spmm_s8_semi24_tiles.h"

namespace sparsecpu {
namespace {

struct Avx2S8 : Avx2S8Base {
  struct A {  // u8 bytes 0, 2 and 1, 3 of each dword, zero-extended to 16 bits
    __m256i even, odd;
  };
  struct B {  // s8 bytes 0, 2 and 1, 3 of each dword, sign-extended to 16 bits
    __m256i even, odd;
  };
  static A prep_a(V v) {
    return {_mm256_and_si256(v, _mm256_set1_epi16(0x00FF)), _mm256_srli_epi16(v, 8)};
  }
  static B prep_b(V v) { return {_mm256_srai_epi16(_mm256_slli_epi16(v, 8), 8), _mm256_srai_epi16(v, 8)}; }
  static V dot(V acc, const A& a, const B& b) {
    acc = _mm256_add_epi32(acc, dot_pairs(a.even, b.even));
    return _mm256_add_epi32(acc, dot_pairs(a.odd, b.odd));
  }
  static V dot_pairs(V a, V b) { return _mm256_madd_epi16(a, b); }  // 16-bit pairs -> int32
};

// The dense kernel takes weights and activation rows already widened to 16-bit
// pairs (widen_to_pairs; measured 6-17% faster on Zen 3, for twice the weight
// bytes); the block kernel keeps int8 weights (widened, it measured no
// faster); 2:4 weights become one 16-bit pair per group (widen_to_row_pairs,
// see spmm_s8_semi24_tiles.h).
struct Avx2S8Pairs : Avx2S8 {
  static constexpr bool kPairs = true;
};

struct Avx2S8Halves : Avx2S8 {
  static constexpr bool kHalfTokenOrder = true;
};

}  // namespace

void spmm_s8_dense_avx2(const SpmmS8Problem& p) { run_dense<Avx2S8Pairs, 2, 4>(p); }

// Half tiles: widened activations of 2 vectors leave registers for 4 rows;
// tokens 0-15 in the first half (HalfTokenOrder), so calls of up to 16 tokens
// compute one half.
void spmm_s8_quads_avx2(const SpmmS8Problem& p) { run_quads<Avx2S8Halves, 4, 2>(p); }

// 2:4: tiles of up to 64 tokens over the six pair variants of every group;
// calls under 32 tokens, vectors of 8 rows.
void spmm_s8_semi24_avx2(const SpmmS8Problem& p) { run_semi24_pair_variants<Avx2S8Pairs>(p); }

}  // namespace sparsecpu
