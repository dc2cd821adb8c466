// fp32 block-sparse kernels for AVX-512 (F, BW, DQ, VL). Built with -mavx512*;
// reached only through the registry when the CPU and SPARSECPU_ISA allow it.
#include "kernels/simd/avx512.h"
#include "kernels/spmm_f32/spmm_f32_semi24_tiles.h"
#include "kernels/spmm_f32/spmm_f32_tiles.h"

namespace sparsecpu {

void spmm_f32_bsr_r16_avx512(const SpmmF32Problem& p) { run_channel_tiles<Avx512F32, 1, 16, false>(p); }

// Dense block rows are 32 channels: 2 weight vectors x 12 tokens = 24
// accumulators, 14 loads per 24 FMAs (a 16x1 block needs 17 per 16).
void spmm_f32_dense_avx512(const SpmmF32Problem& p) { run_channel_tiles<Avx512F32, 2, 12, true>(p); }

void spmm_f32_bsr_r1to8_avx512(const SpmmF32Problem& p) {
  switch (p.w->block.rows) {
    case 1: return run_token_tiles<Avx512F32, 1, 12>(p);
    case 2: return run_token_tiles<Avx512F32, 2, 8>(p);
    case 4: return run_token_tiles<Avx512F32, 4, 6>(p);
    case 8: return run_token_tiles<Avx512F32, 8, 3>(p);
  }
}

// 2:4: 8 vectors of tokens per tile (8 accumulators, one broadcast weight).
void spmm_f32_semi24_avx512(const SpmmF32Problem& p) { run_semi24_f32<Avx512F32, 8>(p); }

}  // namespace sparsecpu
