// Attention over any fp32 SIMD traits type S (see simd/avx2.h, simd/avx512.h).
//
// One task is a block of query rows of one (sequence, head). The task copies
// the attended keys of its head transposed into a panel (groups of 16 keys,
// head_dim lines each), so the scores of a pass of query rows come from
// broadcast-FMA over key vectors; the weighted sum of values runs over vectors
// of the head dimension. Simd headers must be included before this one.
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
constexpr int kKeyGroup = kPanelTokens;  // keys per panel group (16), as transpose_to_panel writes them

// Query rows per pass and value vectors per pass: rows x 2 vectors of
// accumulators in both phases, 16 of AVX-512's 32 registers and 12 of AVX2's
// 16, leaving room for the loads and a broadcast. Fewer would not cover the
// FMA latency (two FMAs per cycle, four cycles each, need 8 independent sums
// in flight): on Zen 3, 4 rows (8 sums) ran 1.10-1.18x slower than 6.
template <class S>
struct AttentionTile {
  static constexpr int kRows = S::L == 16 ? 8 : 6;
  static constexpr int kValueVectors = 2;
};

struct AttentionScratch {
  std::vector<int32_t> keys;
  std::vector<float> key_panel;  // per group of 16 keys: head_dim x 16
  std::vector<float> gathered;   // 16 key rows copied together when their tokens are not adjacent
  std::vector<float> weights;    // rows x keys_padded
  std::vector<float> values;     // the attended keys' values of the head, contiguous: keys x head_dim
};

// One scratch per thread, reached through a plain reference: a thread_local
// named inside the loops would cost a __tls_get_addr call per use in a shared
// library, and the call clobbers every vector register.
template <class S>
__attribute__((noinline)) AttentionScratch& attention_scratch() {
  thread_local AttentionScratch scratch;
  return scratch;
}

// Keys of the head, transposed into groups of 16: panel[(g * d + c) * 16 + i] = K[keys[16 g + i]][c].
template <class S>
void transpose_keys(const AttentionProblem& p, int64_t b, int64_t h, int64_t keys_padded, AttentionScratch& s) {
  const int64_t d = p.head_dim, n_keys = static_cast<int64_t>(s.keys.size());
  s.key_panel.resize(static_cast<size_t>(keys_padded * d));
  for (int64_t first = 0; first < keys_padded; first += kKeyGroup) {
    float* dst = s.key_panel.data() + first * d;
    const int rows = static_cast<int>(std::max<int64_t>(0, std::min<int64_t>(kKeyGroup, n_keys - first)));
    if (rows == 0) {
      std::fill(dst, dst + kKeyGroup * d, 0.0f);
      continue;
    }
    const int32_t* keys = s.keys.data() + first;
    const float* row0 = p.qkv + (b * p.seq + keys[0]) * p.ld_qkv + p.k_offset + h * d;
    if (keys[rows - 1] - keys[0] == rows - 1) {  // adjacent tokens: read them in place
      S::transpose_to_panel(row0, p.ld_qkv, rows, d, dst);
      continue;
    }
    s.gathered.resize(static_cast<size_t>(kKeyGroup * d));
    for (int i = 0; i < rows; ++i) {
      const float* key = p.qkv + (b * p.seq + keys[i]) * p.ld_qkv + p.k_offset + h * d;
      std::copy(key, key + d, s.gathered.data() + i * d);
    }
    S::transpose_to_panel(s.gathered.data(), d, rows, d, dst);
  }
}

// scores[r][j] = scale * q_r . k_j for a pass of Rows queries, 2 vectors of keys at a time.
template <class S, int Rows>
inline void score_rows(const AttentionProblem& p, const AttentionScratch& s, int64_t keys_padded, float scale,
                       const float* const* query, float* const* weights_of_row) {
  using V = typename S::V;
  constexpr int L = S::L;
  const int64_t d = p.head_dim;
  for (int64_t j = 0; j < keys_padded; j += 2 * L) {
    V acc[Rows][2];
    for (int r = 0; r < Rows; ++r) acc[r][0] = acc[r][1] = S::zero();
    const float* panel0 = s.key_panel.data() + (j / kKeyGroup) * d * kKeyGroup + j % kKeyGroup;
    const float* panel1 = s.key_panel.data() + ((j + L) / kKeyGroup) * d * kKeyGroup + (j + L) % kKeyGroup;
    for (int64_t c = 0; c < d; ++c) {
      const V k0 = S::load(panel0 + c * kKeyGroup), k1 = S::load(panel1 + c * kKeyGroup);
      for (int r = 0; r < Rows; ++r) {
        const V q = S::bcast(query[r] + c);
        acc[r][0] = S::fma(q, k0, acc[r][0]);
        acc[r][1] = S::fma(q, k1, acc[r][1]);
      }
    }
    const V vscale = S::set1(scale);
    for (int r = 0; r < Rows; ++r) {
      S::store(weights_of_row[r] + j, S::mul(acc[r][0], vscale));
      S::store(weights_of_row[r] + j + L, S::mul(acc[r][1], vscale));
    }
  }
}

// out[r][c0..] = sum_j w[r][j] V[keys[j]][c0..] / total[r] for NV vectors of the head dimension.
template <class S, int Rows, int NV>
inline void weighted_values(const AttentionScratch& s, int64_t head_dim, int64_t c0, int lanes_in_last,
                            const float* const* weights_of_row, const float* inverse_total, float* const* out_of_row,
                            int rows) {
  using V = typename S::V;
  V acc[Rows][NV];
  for (int r = 0; r < Rows; ++r)
    for (int v = 0; v < NV; ++v) acc[r][v] = S::zero();
  const int64_t n_keys = static_cast<int64_t>(s.keys.size());
  const float* values = s.values.data() + c0;
  for (int64_t j = 0; j < n_keys; ++j) {
    const float* value = values + j * head_dim;
    V vv[NV];
    for (int v = 0; v < NV - 1; ++v) vv[v] = S::load(value + v * S::L);
    vv[NV - 1] = lanes_in_last == S::L ? S::load(value + (NV - 1) * S::L)
                                       : S::load_partial(value + (NV - 1) * S::L, lanes_in_last);
    for (int r = 0; r < Rows; ++r) {
      const V w = S::bcast(weights_of_row[r] + j);
      for (int v = 0; v < NV; ++v) acc[r][v] = S::fma(w, vv[v], acc[r][v]);
    }
  }
  for (int r = 0; r < Rows; ++r) {  // constant bounds keep acc in registers; rows <= Rows are stored
    if (r >= rows) break;
    const V scale = S::set1(inverse_total[r]);
    for (int v = 0; v < NV - 1; ++v) S::store(out_of_row[r] + v * S::L, S::mul(acc[r][v], scale));
    S::store_partial(out_of_row[r] + (NV - 1) * S::L, S::mul(acc[r][NV - 1], scale), lanes_in_last);
  }
}

// Softmax numerators of one row in place (padding keys get 0); returns 1 / their sum.
template <class S>
inline float softmax_numerators(float* w, int64_t n_keys, int64_t keys_padded) {
  using V = typename S::V;
  constexpr int L = S::L;
  for (int64_t j = n_keys; j < keys_padded; ++j) w[j] = -INFINITY;
  V top = S::set1(-INFINITY);
  for (int64_t j = 0; j < keys_padded; j += L) top = S::max(top, S::load(w + j));
  const V row_max = S::set1(S::reduce_max(top));
  V total = S::zero();
  for (int64_t j = 0; j < keys_padded; j += L) {
    const V e = exp<S>(S::sub(S::load(w + j), row_max));
    S::store(w + j, e);
  }
  for (int64_t j = n_keys; j < keys_padded; ++j) w[j] = 0.0f;
  for (int64_t j = 0; j < keys_padded; j += L) total = S::add(total, S::load(w + j));
  return 1.0f / S::reduce_add(total);
}

// Runs task(scratch, b, h, first, last, all_masked) for every (sequence,
// head, block of query rows) in parallel, scratch.keys holding the keys
// sequence b attends to. A task transposes its head's keys and gathers its
// values, so splitting a sequence into query blocks repeats that work (whole
// sequences measured 1.07-1.09x faster at 256-384 tokens on Zen 3): blocks
// only when there are too few (sequence, head) pairs to keep every thread busy.
template <class Scratch, class Task>
void for_each_attention_task(const AttentionProblem& p, Scratch& (*scratch)(), const Task& task) {
  const int threads = p.threads > 0 ? p.threads : default_num_threads();
  const int64_t query_block = p.batch * p.heads >= 2 * threads ? std::max<int64_t>(p.seq, 1) : kQueryBlock;
  const int64_t query_blocks = (p.seq + query_block - 1) / query_block;
  parallel_for(p.batch * p.heads * query_blocks, p.threads, [&](int64_t t) {
    const int64_t qb = t % query_blocks, bh = t / query_blocks;
    const int64_t b = bh / p.heads, h = bh % p.heads;
    Scratch& s = scratch();
    const bool all_masked = attended_keys(p, b, s.keys);
    const int64_t first = qb * query_block, last = std::min(p.seq, first + query_block);
    if (all_masked && p.all_masked == AllMasked::zeros) return zero_context(p, b, h, first, last);
    task(s, b, h, first, last, all_masked);
  });
}

template <class S>
void attention_simd(const AttentionProblem& p) {
  constexpr int L = S::L;
  constexpr int kRows = AttentionTile<S>::kRows;
  constexpr int kValueVectors = AttentionTile<S>::kValueVectors;
  static_assert(2 * L % kKeyGroup == 0 || kKeyGroup % (2 * L) == 0, "key vectors must tile the panel groups");
  const int64_t d = p.head_dim;
  for_each_attention_task(p, &attention_scratch<S>, [&](AttentionScratch& s, int64_t b, int64_t h, int64_t first,
                                                        int64_t last, bool all_masked) {
    const int64_t n_keys = static_cast<int64_t>(s.keys.size());
    const int64_t step = std::max<int64_t>(2 * L, kKeyGroup);
    const int64_t keys_padded = (n_keys + step - 1) / step * step;
    transpose_keys<S>(p, b, h, keys_padded, s);
    // Values side by side: the rows of a token are ld_qkv apart, one page each.
    s.values.resize(static_cast<size_t>(n_keys * d));
    for (int64_t j = 0; j < n_keys; ++j) {
      const float* value = p.qkv + (b * p.seq + s.keys[j]) * p.ld_qkv + p.v_offset + h * d;
      std::copy(value, value + d, s.values.data() + j * d);
    }
    s.weights.resize(static_cast<size_t>(kRows * keys_padded));
    for (int64_t i0 = first; i0 < last; i0 += kRows) {
      const int rows = static_cast<int>(std::min<int64_t>(kRows, last - i0));
      const float* query[kRows];
      float* weights_of_row[kRows];
      float* out_of_row[kRows];
      for (int r = 0; r < kRows; ++r) {
        const int64_t token = b * p.seq + i0 + std::min(r, rows - 1);
        query[r] = p.qkv + token * p.ld_qkv + p.q_offset + h * d;
        out_of_row[r] = p.out + token * p.ld_out + h * d;
        weights_of_row[r] = s.weights.data() + r * keys_padded;
      }
      score_rows<S, kRows>(p, s, keys_padded, score_scale(p, all_masked), query, weights_of_row);
      float inverse_total[kRows];
      for (int r = 0; r < kRows; ++r) inverse_total[r] = softmax_numerators<S>(weights_of_row[r], n_keys, keys_padded);
      for (int64_t c0 = 0; c0 < d; c0 += kValueVectors * L) {
        const int64_t width = std::min<int64_t>(kValueVectors * L, d - c0);
        const int vectors = static_cast<int>((width + L - 1) / L);
        const int lanes_in_last = static_cast<int>(width - (vectors - 1) * L);
        float* out_chunk[kRows];
        for (int r = 0; r < kRows; ++r) out_chunk[r] = out_of_row[r] + c0;
        if (vectors == 1)
          weighted_values<S, kRows, 1>(s, d, c0, lanes_in_last, weights_of_row, inverse_total, out_chunk, rows);
        else
          weighted_values<S, kRows, 2>(s, d, c0, lanes_in_last, weights_of_row, inverse_total, out_chunk, rows);
      }
    }
  });
}

}  // namespace
}  // namespace sparsecpu
