// int8 kernels for AVX-VNNI (VEX vpdpbusd on 256-bit vectors). Built with
// -mavx2 -mfma -mavxvnni; reached only through the registry.
#include "kernels/simd/avx2.h"
#include "kernels/spmm_s8/spmm_s8_avx2_common.h"
#include "kernels/spmm_s8/spmm_s8_semi24_tiles.h"

namespace sparsecpu {
namespace {

struct Avx2VnniS8 : Avx2S8Base {
  static constexpr bool kHalfTokenOrder = true;  // quads: a last tile of up to 16 tokens runs one half
  using A = __m256i;
  using B = __m256i;
  static A prep_a(V v) { return v; }
  static B prep_b(V v) { return v; }
  static V dot(V acc, A a, B b) { return _mm256_dpbusd_avx_epi32(acc, a, b); }
};

}  // namespace

void spmm_s8_dense_avx2_vnni(const SpmmS8Problem& p) { run_dense<Avx2VnniS8, 2, 6>(p); }

// 2 rows x 32 tokens (16 when the call's last tile holds no more).
void spmm_s8_quads_avx2_vnni(const SpmmS8Problem& p) { run_quads<Avx2VnniS8, 2>(p); }

// 2:4: 2 vectors of channels x 4 tokens, one byte shuffle per dot product.
void spmm_s8_semi24_avx2_vnni(const SpmmS8Problem& p) { run_semi24<Avx2VnniS8, 2, 4>(p); }

}  // namespace sparsecpu
