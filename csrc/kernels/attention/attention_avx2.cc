#include "kernels/simd/avx2.h"
// attention_tiles.h uses the traits and kPanelTokens of the header above.
#include "kernels/attention/attention_tiles.h"

namespace sparsecpu {

void attention_avx2(const AttentionProblem& p) {
  require_float_qkv(p, "attention_avx2");
  attention_simd<Avx2F32>(p);
}

}  // namespace sparsecpu
