#include "kernels/layernorm/layernorm_tiles.h"
#include "kernels/simd/avx512.h"

namespace sparsecpu {

void layernorm_avx512(const LayerNormProblem& p) { layernorm_simd<Avx512F32>(p); }

}  // namespace sparsecpu
