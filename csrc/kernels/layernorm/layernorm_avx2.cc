#include "kernels/layernorm/layernorm_tiles.h"
#include "kernels/simd/avx2.h"

namespace sparsecpu {

void layernorm_avx2(const LayerNormProblem& p) { layernorm_simd<Avx2F32>(p); }

}  // namespace sparsecpu
