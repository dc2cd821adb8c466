#include "kernels/attention/attention_tiles.h"
#include "kernels/simd/avx2.h"

namespace sparsecpu {

void attention_avx2(const AttentionProblem& p) { attention_simd<Avx2F32>(p); }

}  // namespace sparsecpu
