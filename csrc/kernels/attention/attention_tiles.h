// Attention over any fp32 SIMD traits type S (see simd/avx2.h, simd/avx512.h).
//
// One task is a block of query rows of one (sequence, head). The task copies
// the attended keys of its head transposed into a panel (head_dim rows of
// keys), so scores for 4 queries come from broadcast-FMA over key vectors;
// the weighted sum of values runs over vectors of the head dimension.
#pragma once

#include <algorithm>
#include <cmath>
#include <vector>

#include "cpu/thread_pool.h"
#include "kernels/attention/attention.h"
#include "kernels/simd/exp.h"

namespace sparsecpu {
namespace {

constexpr int64_t kQueryBlock = 128;
constexpr int kQueryRows = 4;

struct AttentionScratch {
  std::vector<int32_t> keys;
  std::vector<float> key_panel;  // head_dim x keys_padded
  std::vector<float> weights;    // kQueryRows x keys_padded
};

template <class S, int NV>
inline void weighted_values(const AttentionProblem& p, const AttentionScratch& s, int64_t b,
                            int64_t column, int lanes_in_last, const float* const* weights_of_row,
                            const float* inverse_total, float* const* out_of_row, int rows) {
  using V = typename S::V;
  V acc[kQueryRows][NV];
  for (int r = 0; r < kQueryRows; ++r)
    for (int v = 0; v < NV; ++v) acc[r][v] = S::zero();
  const int64_t n_keys = static_cast<int64_t>(s.keys.size());
  for (int64_t j = 0; j < n_keys; ++j) {
    const float* value = p.qkv + (b * p.seq + s.keys[j]) * p.ld_qkv + column;
    V vv[NV];
    for (int v = 0; v < NV - 1; ++v) vv[v] = S::load(value + v * S::L);
    vv[NV - 1] = lanes_in_last == S::L ? S::load(value + (NV - 1) * S::L)
                                       : S::load_partial(value + (NV - 1) * S::L, lanes_in_last);
    for (int r = 0; r < kQueryRows; ++r) {
      const V w = S::bcast(weights_of_row[r] + j);
      for (int v = 0; v < NV; ++v) acc[r][v] = S::fma(w, vv[v], acc[r][v]);
    }
  }
  for (int r = 0; r < rows; ++r) {
    const V scale = S::set1(inverse_total[r]);
    for (int v = 0; v < NV - 1; ++v) S::store(out_of_row[r] + v * S::L, S::mul(acc[r][v], scale));
    S::store_partial(out_of_row[r] + (NV - 1) * S::L, S::mul(acc[r][NV - 1], scale), lanes_in_last);
  }
}

template <class S>
void attention_simd(const AttentionProblem& p) {
  using V = typename S::V;
  constexpr int L = S::L;
  // Value vectors per pass: 4 rows x 4 zmm (or 4 x 2 ymm) accumulators fit the register file.
  constexpr int kChunkVectors = L == 16 ? 4 : 2;
  const int64_t d = p.head_dim;
  const int64_t query_blocks = (p.seq + kQueryBlock - 1) / kQueryBlock;
  parallel_for(p.batch * p.heads * query_blocks, p.threads, [&](int64_t task) {
    const int64_t qb = task % query_blocks, bh = task / query_blocks;
    const int64_t b = bh / p.heads, h = bh % p.heads;
    thread_local AttentionScratch s;
    const bool uniform = attended_keys(p, b, s.keys);
    const int64_t n_keys = static_cast<int64_t>(s.keys.size());
    const int64_t keys_padded = (n_keys + 2 * L - 1) / (2 * L) * (2 * L);
    s.key_panel.assign(static_cast<size_t>(d * keys_padded), 0.0f);
    s.weights.resize(static_cast<size_t>(kQueryRows * keys_padded));
    for (int64_t j = 0; j < n_keys; ++j) {
      const float* key = p.qkv + (b * p.seq + s.keys[j]) * p.ld_qkv + p.k_offset + h * d;
      for (int64_t c = 0; c < d; ++c) s.key_panel[c * keys_padded + j] = key[c];
    }
    const int64_t first = qb * kQueryBlock, last = std::min(p.seq, first + kQueryBlock);
    for (int64_t i0 = first; i0 < last; i0 += kQueryRows) {
      const int rows = static_cast<int>(std::min<int64_t>(kQueryRows, last - i0));
      const float* query[kQueryRows];
      float* weights_of_row[kQueryRows];
      float* out_of_row[kQueryRows];
      for (int r = 0; r < kQueryRows; ++r) {
        const int64_t token = b * p.seq + i0 + std::min(r, rows - 1);
        query[r] = p.qkv + token * p.ld_qkv + p.q_offset + h * d;
        out_of_row[r] = p.out + token * p.ld_out + h * d;
        weights_of_row[r] = s.weights.data() + r * keys_padded;
      }
      // Scores, two key vectors at a time.
      for (int64_t j = 0; j < keys_padded; j += 2 * L) {
        V acc[kQueryRows][2];
        for (int r = 0; r < kQueryRows; ++r) acc[r][0] = acc[r][1] = S::zero();
        for (int64_t c = 0; c < d; ++c) {
          const float* panel = s.key_panel.data() + c * keys_padded + j;
          const V k0 = S::load(panel), k1 = S::load(panel + L);
          for (int r = 0; r < kQueryRows; ++r) {
            const V q = S::bcast(query[r] + c);
            acc[r][0] = S::fma(q, k0, acc[r][0]);
            acc[r][1] = S::fma(q, k1, acc[r][1]);
          }
        }
        const V scale = S::set1(uniform ? 0.0f : p.scale);
        for (int r = 0; r < kQueryRows; ++r) {
          S::store(weights_of_row[r] + j, S::mul(acc[r][0], scale));
          S::store(weights_of_row[r] + j + L, S::mul(acc[r][1], scale));
        }
      }
      // Softmax numerators; padding keys get weight 0.
      float inverse_total[kQueryRows];
      for (int r = 0; r < kQueryRows; ++r) {
        float* w = weights_of_row[r];
        for (int64_t j = n_keys; j < keys_padded; ++j) w[j] = -INFINITY;
        V top = S::set1(-INFINITY);
        for (int64_t j = 0; j < keys_padded; j += L) top = S::max(top, S::load(w + j));
        const V row_max = S::set1(S::reduce_max(top));
        V total = S::zero();
        for (int64_t j = 0; j < keys_padded; j += L) {
          V e = exp<S>(S::sub(S::load(w + j), row_max));
          S::store(w + j, e);
        }
        for (int64_t j = n_keys; j < keys_padded; ++j) w[j] = 0.0f;
        for (int64_t j = 0; j < keys_padded; j += L) total = S::add(total, S::load(w + j));
        inverse_total[r] = 1.0f / S::reduce_add(total);
      }
      for (int64_t c0 = 0; c0 < d; c0 += kChunkVectors * L) {
        const int64_t width = std::min<int64_t>(kChunkVectors * L, d - c0);
        const int vectors = static_cast<int>((width + L - 1) / L);
        const int lanes_in_last = static_cast<int>(width - (vectors - 1) * L);
        const int64_t column = p.v_offset + h * d + c0;
        float* out_chunk[kQueryRows];
        for (int r = 0; r < kQueryRows; ++r) out_chunk[r] = out_of_row[r] + c0;
        switch (vectors) {
          case 1:
            weighted_values<S, 1>(p, s, b, column, lanes_in_last, weights_of_row, inverse_total,
                                  out_chunk, rows);
            break;
          case 2:
            weighted_values<S, 2>(p, s, b, column, lanes_in_last, weights_of_row, inverse_total,
                                  out_chunk, rows);
            break;
          case 3:
            weighted_values<S, 3>(p, s, b, column, lanes_in_last, weights_of_row, inverse_total,
                                  out_chunk, rows);
            break;
          default:
            weighted_values<S, 4>(p, s, b, column, lanes_in_last, weights_of_row, inverse_total,
                                  out_chunk, rows);
            break;
        }
      }
    }
  });
}

}  // namespace
}  // namespace sparsecpu
