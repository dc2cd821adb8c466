// Multi-head self-attention over packed Q, K, V projections:
// context = softmax(Q Kᵀ · scale, masked keys excluded) · V, per sequence and head.
//
// Token t = b · seq + s of the batch. Q, K and V of head h are the head_dim
// columns starting at q_offset / k_offset / v_offset + h · head_dim of row t of
// qkv; the context of head h goes to columns h · head_dim of row t of out.
// key_mask (batch, seq), nonzero = attend, may be null (attend to all). What a
// sequence whose keys are all masked gets depends on how the source model masks
// (AllMasked below); its outputs are padding in every framework, but they should
// be the same padding.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cpu/cpu_features.h"

namespace sparsecpu {

// The context of a sequence with no unmasked key, as the source model's mask makes it:
//   average   - every key with equal weight (a fill so large that it swallows the scores)
//   all_keys  - softmax over every key as if unmasked (a moderate fill, -10000, shifts all scores alike)
//   zeros     - zero (a -inf fill whose NaN rows the model replaces by 0)
enum class AllMasked : int { average = 0, all_keys = 1, zeros = 2 };

struct AttentionProblem {
  const float* qkv = nullptr;
  // Or the same as bf16 bit patterns (qkv null), for kernels with bf16_qkv:
  // what the bf16 kernel would round qkv to, written so by the layer before.
  const uint16_t* qkv_bf16 = nullptr;
  int64_t ld_qkv = 0;
  int64_t q_offset = 0, k_offset = 0, v_offset = 0;
  float* out = nullptr;
  int64_t ld_out = 0;
  int64_t batch = 0, seq = 0, heads = 0, head_dim = 0;
  const int32_t* key_mask = nullptr;
  float scale = 1.0f;
  AllMasked all_masked = AllMasked::average;
  int threads = 0;  // 0 = the process default
};

using AttentionFn = void (*)(const AttentionProblem&);

// What the two matrix products (scores, weighted values) compute in.
enum class AttentionProducts : int { fp32 = 0, bf16 = 1 };

struct AttentionKernel {
  const char* name;
  Isa isa;
  AttentionFn run;
  AttentionProducts products = AttentionProducts::fp32;
  bool bf16_qkv = false;  // also takes AttentionProblem::qkv_bf16
};

const std::vector<AttentionKernel>& attention_kernels();
// The best usable kernel: one with bf16 products only when `allowed` is bf16
// and bf16 products pay on this CPU (bf16_products() in kernels/peak/peak.h).
const AttentionKernel& select_attention_kernel(AttentionProducts allowed = AttentionProducts::fp32);
const AttentionKernel& attention_kernel_by_name(const std::string& name);

// The keys sequence b attends to, in order (all of them when none is unmasked).
// Returns true when every key was masked.
bool attended_keys(const AttentionProblem& p, int64_t b, std::vector<int32_t>& keys);

// The scale of the scores of sequence b: 0 (equal weights) for an all-masked sequence to average.
inline float score_scale(const AttentionProblem& p, bool all_masked) {
  return all_masked && p.all_masked == AllMasked::average ? 0.0f : p.scale;
}

// "average" | "all_keys" | "zeros"; std::invalid_argument naming the choices otherwise.
AllMasked all_masked_from_name(const std::string& name);

// std::invalid_argument unless p.qkv holds float inputs (kernels without bf16_qkv).
void require_float_qkv(const AttentionProblem& p, const char* kernel);

// Zero context for rows [first, last) of sequence b, head h.
void zero_context(const AttentionProblem& p, int64_t b, int64_t h, int64_t first, int64_t last);

void attention_ref(const AttentionProblem& p);
void attention_avx2(const AttentionProblem& p);
void attention_avx512(const AttentionProblem& p);
void attention_avx512_bf16(const AttentionProblem& p);

// "fp32" | "bf16"; std::invalid_argument naming the choices otherwise.
AttentionProducts attention_products_from_name(const std::string& name);

}  // namespace sparsecpu
