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
      // Four independent sums per pass: one chain of dependent adds would wait
      // on their latency (a 768-wide row: 48 in a row per pass).
      V sum[4] = {S::zero(), S::zero(), S::zero(), S::zero()};
      int64_t c = 0;
      for (; c + 4 * L <= full; c += 4 * L)
        for (int u = 0; u < 4; ++u) sum[u] = S::add(sum[u], S::load(x + c + u * L));
      for (; c < full; c += L) sum[0] = S::add(sum[0], S::load(x + c));
      if (tail) sum[0] = S::add(sum[0], S::load_partial(x + full, tail));
      const V all_sums = S::add(S::add(sum[0], sum[1]), S::add(sum[2], sum[3]));
      const float mean = S::reduce_add(all_sums) / static_cast<float>(p.width);
      const V vmean = S::set1(mean);
      V squares[4] = {S::zero(), S::zero(), S::zero(), S::zero()};
      for (c = 0; c + 4 * L <= full; c += 4 * L)
        for (int u = 0; u < 4; ++u) {
          const V dev = S::sub(S::load(x + c + u * L), vmean);
          squares[u] = S::fma(dev, dev, squares[u]);
        }
      for (; c < full; c += L) {
        const V dev = S::sub(S::load(x + c), vmean);
        squares[0] = S::fma(dev, dev, squares[0]);
      }
      float tail_squares = 0.0f;
      for (c = full; c < p.width; ++c) tail_squares += (x[c] - mean) * (x[c] - mean);
      const V all_squares = S::add(S::add(squares[0], squares[1]), S::add(squares[2], squares[3]));
      const float variance = (S::reduce_add(all_squares) + tail_squares) / static_cast<float>(p.width);
      const float inv_std = 1.0f / std::sqrt(variance + p.eps);
      const V vinv = S::set1(inv_std);
      float* y = p.y + i * p.ldy;
      for (c = 0; c < full; c += L) {
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
