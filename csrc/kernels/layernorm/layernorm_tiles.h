// Layer normalization over any fp32 SIMD traits type S: two passes over each
// row for the statistics (mean, then squared deviations), one to write.
#pragma once

#include <algorithm>
#include <cmath>

#include "cpu/thread_pool.h"
#include "kernels/layernorm/layernorm.h"

namespace sparsecpu {
namespace {

template <class S>
void layernorm_simd(const LayerNormProblem& p) {
  using V = typename S::V;
  constexpr int L = S::L;
  const int64_t full = p.width / L * L;
  const int tail = static_cast<int>(p.width - full);
  const int64_t tasks = (p.rows + kLayerNormRowsPerTask - 1) / kLayerNormRowsPerTask;
  parallel_for(tasks, p.threads, [&](int64_t task) {
    const int64_t end = std::min(p.rows, (task + 1) * kLayerNormRowsPerTask);
    for (int64_t i = task * kLayerNormRowsPerTask; i < end; ++i) {
      const float* x = p.x + i * p.ldx;
      V sum = S::zero();
      for (int64_t c = 0; c < full; c += L) sum = S::add(sum, S::load(x + c));
      if (tail) sum = S::add(sum, S::load_partial(x + full, tail));
      const float mean = S::reduce_add(sum) / static_cast<float>(p.width);
      const V vmean = S::set1(mean);
      V squares = S::zero();
      for (int64_t c = 0; c < full; c += L) {
        const V dev = S::sub(S::load(x + c), vmean);
        squares = S::fma(dev, dev, squares);
      }
      float tail_squares = 0.0f;
      for (int64_t c = full; c < p.width; ++c) tail_squares += (x[c] - mean) * (x[c] - mean);
      const float variance = (S::reduce_add(squares) + tail_squares) / static_cast<float>(p.width);
      const float inv_std = 1.0f / std::sqrt(variance + p.eps);
      const V vinv = S::set1(inv_std);
      float* y = p.y + i * p.ldy;
      for (int64_t c = 0; c < full; c += L) {
        const V norm = S::mul(S::sub(S::load(x + c), vmean), vinv);
        S::store(y + c, S::fma(norm, S::load(p.gamma + c), S::load(p.beta + c)));
      }
      if (tail) {
        const V norm = S::mul(S::sub(S::load_partial(x + full, tail), vmean), vinv);
        S::store_partial(y + full,
                         S::fma(norm, S::load_partial(p.gamma + full, tail), S::load_partial(p.beta + full, tail)),
                         tail);
      }
    }
  });
}

}  // namespace
}  // namespace sparsecpu
