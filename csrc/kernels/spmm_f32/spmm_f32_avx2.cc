// fp32 block-sparse kernels for AVX2 + FMA. Built with -mavx2 -mfma; reached
// only through the registry when the CPU and SPARSECPU_ISA allow it.
#include "kernels/simd/avx2.h"
#include "kernels/spmm_f32/spmm_f32_semi24_tiles.h"
#include "kernels/spmm_f32/spmm_f32_tiles.h"

namespace sparsecpu {

// Register budget (16 ymm): WV * T accumulators + WV weights + 1 broadcast.
void spmm_f32_bsr_r16_avx2(const SpmmF32Problem& p) { run_channel_tiles<Avx2F32, 2, 6, false>(p); }

void spmm_f32_bsr_r8_avx2(const SpmmF32Problem& p) { run_channel_tiles<Avx2F32, 1, 12, false>(p); }

void spmm_f32_dense_avx2(const SpmmF32Problem& p) { run_channel_tiles<Avx2F32, 2, 6, true>(p); }

void spmm_f32_bsr_r1to4_avx2(const SpmmF32Problem& p) {
  switch (p.w->block.rows) {
    case 1: return run_token_tiles<Avx2F32, 1, 6>(p);
    case 2: return run_token_tiles<Avx2F32, 2, 4>(p);
    case 4: return run_token_tiles<Avx2F32, 4, 3>(p);
  }
}

// 2:4: 8 vectors of tokens per tile (8 accumulators, one broadcast weight).
void spmm_f32_semi24_avx2(const SpmmF32Problem& p) { run_semi24_f32<Avx2F32, 8>(p); }

}  // namespace sparsecpu
