// Scalar reference: float64 sums, one (sequence, head) per task.
#include <cmath>
#include <vector>

#include "cpu/thread_pool.h"
#include "kernels/attention/attention.h"

namespace sparsecpu {

void attention_ref(const AttentionProblem& p) {
  require_float_qkv(p, "attention_ref");
  const int64_t d = p.head_dim;
  parallel_for(p.batch * p.heads, p.threads, [&](int64_t task) {
    const int64_t b = task / p.heads, h = task % p.heads;
    std::vector<int32_t> keys;
    const bool all_masked = attended_keys(p, b, keys);
    if (all_masked && p.all_masked == AllMasked::zeros) {
      zero_context(p, b, h, 0, p.seq);
      return;
    }
    const double scale = score_scale(p, all_masked);
    std::vector<double> weight(keys.size());
    for (int64_t i = 0; i < p.seq; ++i) {
      const float* q = p.qkv + (b * p.seq + i) * p.ld_qkv + p.q_offset + h * d;
      double top = -INFINITY;
      for (size_t j = 0; j < keys.size(); ++j) {
        const float* k = p.qkv + (b * p.seq + keys[j]) * p.ld_qkv + p.k_offset + h * d;
        double dot = 0.0;
        for (int64_t c = 0; c < d; ++c) dot += static_cast<double>(q[c]) * k[c];
        weight[j] = dot * scale;
        top = std::max(top, weight[j]);
      }
      double total = 0.0;
      for (double& w : weight) total += (w = std::exp(w - top));
      float* out = p.out + (b * p.seq + i) * p.ld_out + h * d;
      for (int64_t c = 0; c < d; ++c) {
        double sum = 0.0;
        for (size_t j = 0; j < keys.size(); ++j)
          sum += weight[j] * p.qkv[(b * p.seq + keys[j]) * p.ld_qkv + p.v_offset + h * d + c];
        out[c] = static_cast<float>(sum / total);
      }
    }
  });
}

}  // namespace sparsecpu
