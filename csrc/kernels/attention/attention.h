// Multi-head self-attention over packed Q, K, V projections:
// context = softmax(Q Kᵀ · scale, masked keys excluded) · V, per sequence and head.
//
// Token t = b · seq + s of the batch. Q, K and V of head h are the head_dim
// columns starting at q_offset / k_offset / v_offset + h · head_dim of row t of
// qkv; the context of head h goes to columns h · head_dim of row t of out.
// key_mask (batch, seq), nonzero = attend, may be null (attend to all). A
// sequence whose keys are all masked attends to every key with equal weight,
// which is what the additive large-negative masks of BERT-family exports give.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cpu/cpu_features.h"

namespace sparsecpu {

struct AttentionProblem {
  const float* qkv = nullptr;
  int64_t ld_qkv = 0;
  int64_t q_offset = 0, k_offset = 0, v_offset = 0;
  float* out = nullptr;
  int64_t ld_out = 0;
  int64_t batch = 0, seq = 0, heads = 0, head_dim = 0;
  const int32_t* key_mask = nullptr;
  float scale = 1.0f;
  int threads = 0;  // 0 = the process default
};

using AttentionFn = void (*)(const AttentionProblem&);

struct AttentionKernel {
  const char* name;
  Isa isa;
  AttentionFn run;
};

const std::vector<AttentionKernel>& attention_kernels();
const AttentionKernel& select_attention_kernel();
const AttentionKernel& attention_kernel_by_name(const std::string& name);

// The keys sequence b attends to, in order (all of them when none is unmasked).
// Returns true when the weights are uniform because every key was masked.
bool attended_keys(const AttentionProblem& p, int64_t b, std::vector<int32_t>& keys);

void attention_ref(const AttentionProblem& p);
void attention_avx2(const AttentionProblem& p);
void attention_avx512(const AttentionProblem& p);

}  // namespace sparsecpu
