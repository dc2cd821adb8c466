#include "kernels/attention/attention_tiles.h"
#include "kernels/simd/avx512.h"

namespace sparsecpu {

void attention_avx512(const AttentionProblem& p) { attention_simd<Avx512F32>(p); }

}  // namespace sparsecpu
