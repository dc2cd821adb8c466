#include "kernels/simd/avx512.h"
// attention_tiles.h uses the traits and kPanelTokens of the header above.
#include "kernels/attention/attention_tiles.h"

namespace sparsecpu {

void attention_avx512(const AttentionProblem& p) {
  require_float_qkv(p, "attention_avx512");
  attention_simd<Avx512F32>(p);
}

}  // namespace sparsecpu
