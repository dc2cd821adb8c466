// Attention with both matrix products in bf16 (vdpbf16ps: bf16 pairs, fp32
// sums), for int8 and bf16 models on CPUs with AVX512-BF16: twice the fp32
// FMA rate per instruction. Q, K, the softmax weights and V are rounded to
// bf16 (8 significant bits, as the int8 models' activations are to 8 bits);
// the scores, softmax and sums stay fp32. Q, K and V may come as bf16
// already (qkv_bf16: the same values, rounded by the layer that wrote them).
// Same tasks, key panels and masking as the fp32 kernels (attention_tiles.h),
// with dwords of bf16 pairs where those hold floats:
//   scores:  key panel dword (pair c, key i) = (K_i[2c], K_i[2c+1]), the query's
//            pair broadcast: lanes are 16 keys, the pairs run over head_dim;
//   values:  dword (key pair j, channel c) = (V[2j][c], V[2j+1][c]), the pair of
//            weights (w[2j], w[2j+1]) broadcast: lanes are 16 channels.
#include "kernels/simd/avx512.h"
#include "kernels/attention/attention_tiles.h"
#include "kernels/simd/bf16_pairs.h"

namespace sparsecpu {
namespace {

using S = Avx512F32;
constexpr int kRows = AttentionTile<S>::kRows;   // query rows per pass
constexpr int kValueVectors = 2;                  // 32 channels per pass of the weighted values

struct Bf16AttentionScratch {
  std::vector<int32_t> keys;
  std::vector<uint32_t> gathered;      // 16 keys x pairs, before the transpose
  std::vector<uint32_t> key_panel;     // per group of 16 keys: pairs x 16
  std::vector<uint32_t> value_pairs;   // per key pair: head_dim dwords
  std::vector<uint32_t> query_pairs;   // kRows x pairs
  std::vector<float> weights;          // kRows x keys_padded
  std::vector<uint32_t> weight_pairs;  // kRows x keys_padded / 2
};

__attribute__((noinline)) Bf16AttentionScratch& bf16_attention_scratch() {  // see attention_scratch
  thread_local Bf16AttentionScratch scratch;
  return scratch;
}

// The bf16 pairs of head_dim values of qkv from element `at` (Q or K of one
// token and head): copied when the layer before wrote bf16, else rounded.
void row_pairs(const AttentionProblem& p, int64_t at, uint32_t* dst) {
  if (p.qkv_bf16)
    copy_bf16_pairs(p.qkv_bf16 + at, p.head_dim, dst);
  else
    to_bf16_pairs(p.qkv + at, p.head_dim, dst);
}

// Keys of head h in groups of 16: panel[(g * pairs + c) * 16 + i] = pair c of key 16 g + i.
void pack_key_pairs(const AttentionProblem& p, int64_t b, int64_t h, int64_t pairs, int64_t keys_padded,
                    Bf16AttentionScratch& s) {
  const int64_t d = p.head_dim, n_keys = static_cast<int64_t>(s.keys.size());
  s.key_panel.resize(static_cast<size_t>(keys_padded * pairs));
  s.gathered.resize(static_cast<size_t>(kKeyGroup * pairs));
  for (int64_t first = 0; first < keys_padded; first += kKeyGroup) {
    const int rows = static_cast<int>(std::clamp<int64_t>(n_keys - first, 0, kKeyGroup));
    for (int i = 0; i < rows; ++i)
      row_pairs(p, (b * p.seq + s.keys[first + i]) * p.ld_qkv + p.k_offset + h * d, s.gathered.data() + i * pairs);
    // The transpose moves 32-bit lanes as they are: pairs pass as float bit patterns.
    S::transpose_to_panel(reinterpret_cast<const float*>(s.gathered.data()), pairs, rows, pairs,
                          reinterpret_cast<float*>(s.key_panel.data() + first * pairs));
  }
}

// Values of head h, two keys per dword row (an odd last key paired with zeros).
void pack_value_pairs(const AttentionProblem& p, int64_t b, int64_t h, Bf16AttentionScratch& s) {
  const int64_t d = p.head_dim, n_keys = static_cast<int64_t>(s.keys.size());
  s.value_pairs.resize(static_cast<size_t>((n_keys + 1) / 2 * d));
  const auto at = [&](int64_t j) { return (b * p.seq + s.keys[j]) * p.ld_qkv + p.v_offset + h * d; };
  for (int64_t j = 0; j < n_keys; j += 2) {
    uint32_t* dst = s.value_pairs.data() + j / 2 * d;
    if (p.qkv_bf16)
      interleave_bf16_rows(p.qkv_bf16 + at(j), j + 1 < n_keys ? p.qkv_bf16 + at(j + 1) : nullptr, d, dst);
    else
      interleave_bf16_pairs(p.qkv + at(j), j + 1 < n_keys ? p.qkv + at(j + 1) : nullptr, d, dst);
  }
}

// scores[r][j] = scale * q_r . k_j for a pass of Rows queries, 32 keys at a
// time; top[r]: the lane-wise maximum of row r over its n_keys real keys
// (the softmax's first pass), taken after the products over the stored rows,
// all rows at once: tracked in the product loop, the 8 maxima took registers
// the compiler then found by spilling the key vectors (a reload per product).
template <int Rows>
void score_rows(const Bf16AttentionScratch& s, int64_t pairs, int64_t n_keys, int64_t keys_padded, float scale,
                const uint32_t* const* query, float* const* weights_of_row, __m512 (&top)[Rows]) {
  for (int64_t j = 0; j < keys_padded; j += 2 * kKeyGroup) {
    __m512 acc[Rows][2];
    for (int r = 0; r < Rows; ++r) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
    const uint32_t* panel0 = s.key_panel.data() + j * pairs;
    const uint32_t* panel1 = panel0 + kKeyGroup * pairs;
    for (int64_t c = 0; c < pairs; ++c) {
      const __m512bh k0 = (__m512bh)_mm512_loadu_si512(panel0 + c * kKeyGroup);
      const __m512bh k1 = (__m512bh)_mm512_loadu_si512(panel1 + c * kKeyGroup);
      for (int r = 0; r < Rows; ++r) {
        const __m512bh q = (__m512bh)_mm512_set1_epi32(static_cast<int>(query[r][c]));
        acc[r][0] = _mm512_dpbf16_ps(acc[r][0], k0, q);
        acc[r][1] = _mm512_dpbf16_ps(acc[r][1], k1, q);
      }
    }
    const __m512 vscale = _mm512_set1_ps(scale);
    for (int r = 0; r < Rows; ++r) {
      _mm512_storeu_ps(weights_of_row[r] + j, _mm512_mul_ps(acc[r][0], vscale));
      _mm512_storeu_ps(weights_of_row[r] + j + kKeyGroup, _mm512_mul_ps(acc[r][1], vscale));
    }
  }
  for (int r = 0; r < Rows; ++r) top[r] = _mm512_set1_ps(-INFINITY);
  for (int64_t j = 0; j < keys_padded; j += kKeyGroup) {
    const __mmask16 real = S::mask(static_cast<int>(std::clamp<int64_t>(n_keys - j, 0, kKeyGroup)));
    for (int r = 0; r < Rows; ++r)
      top[r] = _mm512_mask_max_ps(top[r], real, top[r], _mm512_loadu_ps(weights_of_row[r] + j));
  }
}

// One row's softmax numerators exp(w - max) as bf16 pairs (padding keys 0),
// in one pass; returns 1 / their fp32 sum. top: the row's lane-wise maximum.
inline float softmax_bf16_pairs(const float* w, __m512 top, int64_t n_keys, int64_t keys_padded, uint32_t* pairs) {
  const __m512 row_max = _mm512_set1_ps(_mm512_reduce_max_ps(top));
  __m512 total0 = _mm512_setzero_ps(), total1 = _mm512_setzero_ps();
  for (int64_t j = 0; j < keys_padded; j += 2 * kKeyGroup) {
    const __mmask16 real0 = S::mask(static_cast<int>(std::clamp<int64_t>(n_keys - j, 0, kKeyGroup)));
    const __mmask16 real1 = S::mask(static_cast<int>(std::clamp<int64_t>(n_keys - j - kKeyGroup, 0, kKeyGroup)));
    const __m512 e0 = _mm512_maskz_mov_ps(real0, exp<S>(_mm512_sub_ps(_mm512_loadu_ps(w + j), row_max)));
    const __m512 e1 = _mm512_maskz_mov_ps(real1, exp<S>(_mm512_sub_ps(_mm512_loadu_ps(w + j + kKeyGroup), row_max)));
    total0 = _mm512_add_ps(total0, e0);
    total1 = _mm512_add_ps(total1, e1);
    _mm512_storeu_si512(pairs + j / 2, (__m512i)_mm512_cvtne2ps_pbh(e1, e0));
  }
  return 1.0f / _mm512_reduce_add_ps(_mm512_add_ps(total0, total1));
}

// out[r][c0..] = sum_j w[r][j] V[keys[j]][c0..] / total[r] for NV vectors of the head dimension.
template <int Rows, int NV>
void weighted_values(const Bf16AttentionScratch& s, int64_t head_dim, int64_t key_pairs, int64_t c0,
                     int lanes_in_last, const uint32_t* const* weight_pairs, const float* inverse_total,
                     float* const* out_of_row, int rows) {
  __m512 acc[Rows][NV];
  for (int r = 0; r < Rows; ++r)
    for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_setzero_ps();
  const __mmask16 last = S::mask(lanes_in_last);
  for (int64_t j = 0; j < key_pairs; ++j) {
    const uint32_t* value = s.value_pairs.data() + j * head_dim + c0;
    __m512bh vv[NV];
    for (int v = 0; v < NV - 1; ++v) vv[v] = (__m512bh)_mm512_loadu_si512(value + v * S::L);
    vv[NV - 1] = (__m512bh)_mm512_maskz_loadu_epi32(last, value + (NV - 1) * S::L);
    for (int r = 0; r < Rows; ++r) {
      const __m512bh w = (__m512bh)_mm512_set1_epi32(static_cast<int>(weight_pairs[r][j]));
      for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_dpbf16_ps(acc[r][v], vv[v], w);
    }
  }
  for (int r = 0; r < Rows; ++r) {  // constant bounds keep acc in registers; rows <= Rows are stored
    if (r >= rows) break;
    const __m512 scale = _mm512_set1_ps(inverse_total[r]);
    for (int v = 0; v < NV - 1; ++v) _mm512_storeu_ps(out_of_row[r] + v * S::L, _mm512_mul_ps(acc[r][v], scale));
    _mm512_mask_storeu_ps(out_of_row[r] + (NV - 1) * S::L, last, _mm512_mul_ps(acc[r][NV - 1], scale));
  }
}

}  // namespace

void attention_avx512_bf16(const AttentionProblem& p) {
  const int64_t d = p.head_dim, pairs = (d + 1) / 2;
  for_each_attention_task(p, &bf16_attention_scratch, [&](Bf16AttentionScratch& s, int64_t b, int64_t h,
                                                            int64_t first, int64_t last, bool all_masked) {
    const int64_t n_keys = static_cast<int64_t>(s.keys.size());
    const int64_t keys_padded = (n_keys + 2 * kKeyGroup - 1) / (2 * kKeyGroup) * (2 * kKeyGroup);
    const int64_t key_pairs = (n_keys + 1) / 2;
    pack_key_pairs(p, b, h, pairs, keys_padded, s);
    pack_value_pairs(p, b, h, s);
    s.weights.resize(static_cast<size_t>(kRows * keys_padded));
    s.weight_pairs.resize(static_cast<size_t>(kRows * keys_padded / 2));
    s.query_pairs.resize(static_cast<size_t>(kRows * pairs));
    for (int64_t i0 = first; i0 < last; i0 += kRows) {
      const int rows = static_cast<int>(std::min<int64_t>(kRows, last - i0));
      const uint32_t* query[kRows];
      const uint32_t* weight_pairs[kRows];
      float* weights_of_row[kRows];
      float* out_of_row[kRows];
      for (int r = 0; r < kRows; ++r) {
        const int64_t token = b * p.seq + i0 + std::min(r, rows - 1);
        uint32_t* q = s.query_pairs.data() + r * pairs;
        row_pairs(p, token * p.ld_qkv + p.q_offset + h * d, q);
        query[r] = q;
        out_of_row[r] = p.out + token * p.ld_out + h * d;
        weights_of_row[r] = s.weights.data() + r * keys_padded;
        weight_pairs[r] = s.weight_pairs.data() + r * keys_padded / 2;
      }
      __m512 top[kRows];
      score_rows<kRows>(s, pairs, n_keys, keys_padded, score_scale(p, all_masked), query, weights_of_row, top);
      float inverse_total[kRows];
      for (int r = 0; r < kRows; ++r)
        inverse_total[r] = softmax_bf16_pairs(weights_of_row[r], top[r], n_keys, keys_padded,
                                              s.weight_pairs.data() + r * keys_padded / 2);
      for (int64_t c0 = 0; c0 < d; c0 += kValueVectors * S::L) {
        const int64_t width = std::min<int64_t>(kValueVectors * S::L, d - c0);
        const int vectors = static_cast<int>((width + S::L - 1) / S::L);
        const int lanes_in_last = static_cast<int>(width - (vectors - 1) * S::L);
        float* out_chunk[kRows];
        for (int r = 0; r < kRows; ++r) out_chunk[r] = out_of_row[r] + c0;
        if (vectors == 1)
          weighted_values<kRows, 1>(s, d, key_pairs, c0, lanes_in_last, weight_pairs, inverse_total, out_chunk, rows);
        else
          weighted_values<kRows, 2>(s, d, key_pairs, c0, lanes_in_last, weight_pairs, inverse_total, out_chunk, rows);
      }
    }
  });
}

}  // namespace sparsecpu
