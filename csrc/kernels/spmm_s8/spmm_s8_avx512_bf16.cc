// The AVX512-VNNI int8 kernels built with -mavx512bf16 as well: the same
// code, except that bf16 outputs (S8Output::bf16) take vcvtneps2bf16 instead
// of the ten integer instructions that emulate it (see simd/avx512.h). With
// them, writing BERT-base's QKV projection as bf16 for the bf16 attention cost
// 0.10 ms less than float per run at 128 tokens on Zen 5, and 0.08 ms more
// when emulated. Reached only through the registry.
#include "kernels/spmm_s8/spmm_s8_avx512_common.h"

namespace sparsecpu {

void spmm_s8_dense_avx512_bf16(const SpmmS8Problem& p) { run_dense_avx512(p); }
void spmm_s8_quads_avx512_bf16(const SpmmS8Problem& p) { run_quads_avx512(p); }
void spmm_s8_semi24_avx512_bf16(const SpmmS8Problem& p) { run_semi24_avx512(p); }

}  // namespace sparsecpu
