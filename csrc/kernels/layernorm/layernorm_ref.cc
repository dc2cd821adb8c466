// Scalar reference with float64 statistics.
#include <algorithm>
#include <cmath>

#include "cpu/thread_pool.h"
#include "kernels/layernorm/layernorm.h"

namespace sparsecpu {

void layernorm_ref(const LayerNormProblem& p) {
  const int64_t tasks = (p.rows + kLayerNormRowsPerTask - 1) / kLayerNormRowsPerTask;
  parallel_for(tasks, p.threads, [&](int64_t task) {
    const int64_t end = std::min(p.rows, (task + 1) * kLayerNormRowsPerTask);
    for (int64_t i = task * kLayerNormRowsPerTask; i < end; ++i) {
      const float* x = p.x + i * p.ldx;
      double sum = 0.0;
      for (int64_t c = 0; c < p.width; ++c) sum += x[c];
      const double mean = sum / static_cast<double>(p.width);
      double squares = 0.0;
      for (int64_t c = 0; c < p.width; ++c) squares += (x[c] - mean) * (x[c] - mean);
      const double inv_std = 1.0 / std::sqrt(squares / static_cast<double>(p.width) + p.eps);
      float* y = p.y + i * p.ldy;
      for (int64_t c = 0; c < p.width; ++c)
        y[c] = static_cast<float>((x[c] - mean) * inv_std * p.gamma[c] + p.beta[c]);
    }
  });
}

}  // namespace sparsecpu
